/**
 * Per-user category preferences and RFC 8058 one-click unsubscribe. A token is
 * `<payload>.<signature>`: the payload names the user and category, the signature is an HMAC-SHA256
 * of it, so the POST endpoint needs no session and a token cannot be forged or pointed elsewhere.
 * Tokens do not expire: RFC 8058 asks that an unsubscribe link keep working.
 *
 * Preferences are one list per deployment, never per tenant: they live where the email schema is,
 * whatever the tenant of the unit of work.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { and, eq } from "drizzle-orm";
import { EmailErrors } from "./errors.js";
import type { EmailDeps } from "./internal.js";
import { emailPreferences } from "./schema.js";
import { MANDATORY_CATEGORIES, OPTIONAL_CATEGORIES, isMandatoryCategory } from "./templates.js";

export interface CategoryPreference {
  category: string;
  optedOut: boolean;
  /** False for account and security mail, which cannot be opted out of. */
  optional: boolean;
}

type Deps = Pick<EmailDeps, "context" | "audit" | "definitions" | "unsubscribeSecret" | "publicUrl">;

const b64url = (value: Buffer | string) => Buffer.from(value).toString("base64url");
const sign = ({ unsubscribeSecret }: Pick<Deps, "unsubscribeSecret">, payload: string) =>
  createHmac("sha256", unsubscribeSecret).update(`unsubscribe:${payload}`).digest();

async function readPreferences({ context, definitions }: Deps, userId: string): Promise<CategoryPreference[]> {
  const rows = await context.schemaDb().select().from(emailPreferences).where(eq(emailPreferences.userId, userId));
  const optedOut = new Map(rows.map((r) => [r.category, r.optedOut]));
  const known = [...MANDATORY_CATEGORIES, ...OPTIONAL_CATEGORIES, ...[...definitions.values()].map((d) => d.category)];
  const all = [...new Set([...known, ...optedOut.keys()])];
  return all.map((category) => ({
    category,
    optional: !isMandatoryCategory(category),
    optedOut: !isMandatoryCategory(category) && (optedOut.get(category) ?? false),
  }));
}

async function setOptedOut({ context }: Deps, userId: string, category: string, optedOut: boolean) {
  // The user row must exist where the preference is written (the schema's place, not the tenant's).
  await context.homeAndTenant(null, () => context.ensureReferenced("email_preferences", { user_id: userId }));
  await context
    .schemaDb()
    .insert(emailPreferences)
    .values({ userId, category, optedOut })
    .onConflictDoUpdate({
      target: [emailPreferences.userId, emailPreferences.category],
      set: { optedOut, updatedAt: new Date() },
    });
}

/**
 * A signed one-click unsubscribe token for one user and category.
 *
 * @example
 * const token = sdk.email.createUnsubscribeToken(userId, "marketing");
 */
export function createUnsubscribeToken(
  deps: Pick<Deps, "unsubscribeSecret">,
  userId: string,
  category: string,
): string {
  const payload = b64url(JSON.stringify({ u: userId, c: category }));
  return `${payload}.${b64url(sign(deps, payload))}`;
}

function verifyUnsubscribeToken(deps: Deps, token: string): { userId: string; category: string } {
  const [payload, signature, extra] = token.split(".");
  if (!payload || !signature || extra !== undefined) throw EmailErrors.UNSUBSCRIBE_TOKEN_INVALID();
  const expected = sign(deps, payload);
  const given = Buffer.from(signature, "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    throw EmailErrors.UNSUBSCRIBE_TOKEN_INVALID();
  const { u, c } = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { u?: unknown; c?: unknown };
  if (typeof u !== "string" || typeof c !== "string" || isMandatoryCategory(c))
    throw EmailErrors.UNSUBSCRIBE_TOKEN_INVALID();
  return { userId: u, category: c };
}

/**
 * The RFC 8058 headers for a message in `category` to `userId`; none for account and security
 * mail, or without a public URL to point at.
 */
export function unsubscribeHeaders(
  deps: Pick<Deps, "unsubscribeSecret" | "publicUrl">,
  userId: string | null | undefined,
  category: string,
): Record<string, string> | undefined {
  if (!userId || !deps.publicUrl || isMandatoryCategory(category)) return undefined;
  const url = `${deps.publicUrl.replace(/\/$/, "")}/api/v1/email/unsubscribe?token=${createUnsubscribeToken(deps, userId, category)}`;
  return { "List-Unsubscribe": `<${url}>`, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click" };
}

/**
 * A user's preference for every category.
 *
 * @example
 * const preferences = await sdk.email.getPreferences(userId);
 */
export const getPreferences = (deps: Deps, userId: string) => readPreferences(deps, userId);

/**
 * Opts a user in or out of categories. Account and security mail cannot be opted out of.
 *
 * @example
 * await sdk.email.updatePreferences(userId, [{ category: "marketing", optedOut: true }]);
 */
export async function updatePreferences(
  deps: Deps,
  userId: string,
  changes: { category: string; optedOut: boolean }[],
) {
  const refused = changes.filter((c) => c.optedOut && isMandatoryCategory(c.category));
  if (refused.length > 0) throw EmailErrors.CATEGORY_NOT_OPTIONAL({ categories: refused.map((c) => c.category) });
  return deps.context.transaction(async () => {
    const before = await readPreferences(deps, userId);
    for (const change of changes) {
      if (!isMandatoryCategory(change.category)) await setOptedOut(deps, userId, change.category, change.optedOut);
    }
    const after = await readPreferences(deps, userId);
    await deps.audit.recordAuditEvent({
      action: "email.preferences_updated",
      target: { type: "user", id: userId },
      changes: { before, after },
    });
    return after;
  });
}

/**
 * Applies a one-click unsubscribe token: opts its user out of its category. Idempotent.
 *
 * @example
 * await sdk.email.unsubscribe(token); // from POST /api/v1/email/unsubscribe?token=…
 */
export async function unsubscribe(deps: Deps, token: string) {
  const { userId, category } = verifyUnsubscribeToken(deps, token);
  return deps.context.transaction(async () => {
    const [current] = await deps.context
      .schemaDb()
      .select({ optedOut: emailPreferences.optedOut })
      .from(emailPreferences)
      .where(and(eq(emailPreferences.userId, userId), eq(emailPreferences.category, category)));
    if (!current?.optedOut) {
      await setOptedOut(deps, userId, category, true);
      await deps.audit.recordAuditEvent({
        action: "email.unsubscribed",
        actor: { type: "user", id: userId },
        target: { type: "user", id: userId },
        metadata: { category, via: "one-click" },
      });
    }
    return { userId, category };
  });
}
