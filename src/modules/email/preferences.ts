/**
 * Per-user category preferences and RFC 8058 one-click unsubscribe. A token is
 * `<payload>.<signature>`: the payload names the user and category, the signature is an HMAC-SHA256
 * of it, so the POST endpoint needs no session and a token cannot be forged or pointed elsewhere.
 * Tokens do not expire: RFC 8058 asks that an unsubscribe link keep working.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { and, eq } from "drizzle-orm";
import { ensureControlPlaneRows } from "../../db/control-plane-rows.js";
import type { Router } from "../../db/router.js";
import type { AuditModule } from "../audit/index.js";
import { createEmailDatabases } from "./databases.js";
import { EmailErrors } from "./errors.js";
import { emailPreferences } from "./schema.js";
import { MANDATORY_CATEGORIES, OPTIONAL_CATEGORIES, isMandatoryCategory } from "./templates.js";

export interface CategoryPreference {
  category: string;
  optedOut: boolean;
  /** False for account and security mail, which cannot be opted out of. */
  optional: boolean;
}

interface Deps {
  router: Router;
  audit: AuditModule;
  /** Every category mail can be sent in (the defaults plus the definitions' categories). */
  categories: readonly string[];
  unsubscribeSecret: Buffer;
  publicUrl?: string;
}

const b64url = (value: Buffer | string) => Buffer.from(value).toString("base64url");

export function createPreferences({ router, audit, categories, unsubscribeSecret, publicUrl }: Deps) {
  // One list per deployment, never per tenant: always the email schema's database.
  const { home, schemaDb: db } = createEmailDatabases(router);
  const sign = (payload: string) => createHmac("sha256", unsubscribeSecret).update(`unsubscribe:${payload}`).digest();
  const known = [...new Set([...MANDATORY_CATEGORIES, ...OPTIONAL_CATEGORIES, ...categories])];

  async function readPreferences(userId: string): Promise<CategoryPreference[]> {
    const rows = await db.select().from(emailPreferences).where(eq(emailPreferences.userId, userId));
    const optedOut = new Map(rows.map((r) => [r.category, r.optedOut]));
    const all = [...new Set([...known, ...optedOut.keys()])];
    return all.map((category) => ({
      category,
      optional: !isMandatoryCategory(category),
      optedOut: !isMandatoryCategory(category) && (optedOut.get(category) ?? false),
    }));
  }

  async function setOptedOut(userId: string, category: string, optedOut: boolean) {
    await ensureControlPlaneRows(router, home, "users", [userId]);
    await db
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
  function createUnsubscribeToken(userId: string, category: string): string {
    const payload = b64url(JSON.stringify({ u: userId, c: category }));
    return `${payload}.${b64url(sign(payload))}`;
  }

  function verifyUnsubscribeToken(token: string): { userId: string; category: string } {
    const [payload, signature, extra] = token.split(".");
    if (!payload || !signature || extra !== undefined) throw EmailErrors.UNSUBSCRIBE_TOKEN_INVALID();
    const expected = sign(payload);
    const given = Buffer.from(signature, "base64url");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw EmailErrors.UNSUBSCRIBE_TOKEN_INVALID();
    const { u, c } = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { u?: unknown; c?: unknown };
    if (typeof u !== "string" || typeof c !== "string" || isMandatoryCategory(c)) throw EmailErrors.UNSUBSCRIBE_TOKEN_INVALID();
    return { userId: u, category: c };
  }

  return {
    createUnsubscribeToken,

    /**
     * The RFC 8058 headers for a message in `category` to `userId`; none for account and security
     * mail, or without a public URL to point at.
     */
    unsubscribeHeaders(userId: string | null | undefined, category: string): Record<string, string> | undefined {
      if (!userId || !publicUrl || isMandatoryCategory(category)) return undefined;
      const url = `${publicUrl.replace(/\/$/, "")}/api/v1/email/unsubscribe?token=${createUnsubscribeToken(userId, category)}`;
      return { "List-Unsubscribe": `<${url}>`, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click" };
    },

    /**
     * A user's preference for every category.
     *
     * @example
     * const preferences = await sdk.email.getPreferences(userId);
     */
    getPreferences: (userId: string) => readPreferences(userId),

    /**
     * Opts a user in or out of categories. Account and security mail cannot be opted out of.
     *
     * @example
     * await sdk.email.updatePreferences(userId, [{ category: "marketing", optedOut: true }]);
     */
    async updatePreferences(userId: string, changes: { category: string; optedOut: boolean }[]) {
      const refused = changes.filter((c) => c.optedOut && isMandatoryCategory(c.category));
      if (refused.length > 0) throw EmailErrors.CATEGORY_NOT_OPTIONAL({ categories: refused.map((c) => c.category) });
      return router.transaction(async () => {
        const before = await readPreferences(userId);
        for (const change of changes) {
          if (!isMandatoryCategory(change.category)) await setOptedOut(userId, change.category, change.optedOut);
        }
        const after = await readPreferences(userId);
        await audit.recordAuditEvent({
          action: "email.preferences_updated",
          target: { type: "user", id: userId },
          changes: { before, after },
        });
        return after;
      });
    },

    /**
     * Applies a one-click unsubscribe token: opts its user out of its category. Idempotent.
     *
     * @example
     * await sdk.email.unsubscribe(token); // from POST /api/v1/email/unsubscribe?token=…
     */
    async unsubscribe(token: string) {
      const { userId, category } = verifyUnsubscribeToken(token);
      return router.transaction(async () => {
        const [current] = await db
          .select({ optedOut: emailPreferences.optedOut })
          .from(emailPreferences)
          .where(and(eq(emailPreferences.userId, userId), eq(emailPreferences.category, category)));
        if (!current?.optedOut) {
          await setOptedOut(userId, category, true);
          await audit.recordAuditEvent({
            action: "email.unsubscribed",
            actor: { type: "user", id: userId },
            target: { type: "user", id: userId },
            metadata: { category, via: "one-click" },
          });
        }
        return { userId, category };
      });
    },
  };
}

export type Preferences = ReturnType<typeof createPreferences>;
