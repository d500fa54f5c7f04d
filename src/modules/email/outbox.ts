/**
 * The transactional outbox: `enqueueEmail` renders the message and writes an `email_sends` row in the
 * caller's unit of work, with a NOTIFY that PostgreSQL delivers only at commit. Rolled back, the row
 * and the wake-up vanish together, so nothing is ever sent for work that did not happen. Nothing
 * here talks to the provider.
 */
import { eq, sql } from "drizzle-orm";
import { currentContext } from "../../db/unit-of-work.js";
import { EmailErrors } from "./errors.js";
import type { EmailDeps } from "./internal.js";
import { unsubscribeHeaders } from "./preferences.js";
import { emailSends, type EmailSendStatus } from "./schema.js";
import { localeChain } from "./template-store.js";
import { isMandatoryCategory, renderContent } from "./templates.js";

/** The channel dispatchers LISTEN on. */
export const EMAIL_CHANNEL = "sv_email";

export interface EnqueueEmailInput {
  /** The recipient; looked up from `userId` when omitted. */
  to?: string;
  /** The user the mail is for: their preferences apply and non-account mail gets an unsubscribe link. */
  userId?: string;
  /** A template key, e.g. `verify-email`. */
  template: string;
  /** The template's variables, validated by its definition. */
  data: Record<string, unknown>;
  /** Defaults to the template's category. `account` and `security` mail ignores opt-outs. */
  category?: string;
  /** Defaults to the unit of work's tenant; picks the tenant's template override. */
  tenantId?: string | null;
  /** A second enqueue with the same key returns the first send instead of adding one. */
  idempotencyKey?: string;
  locale?: string;
}

export interface EnqueueEmailResult {
  id: string;
  status: "queued" | "skipped";
  skipReason?: "suppressed" | "opted_out";
  /** True when `idempotencyKey` matched an earlier send, which is returned instead. */
  duplicate?: boolean;
}

type Deps = Pick<
  EmailDeps,
  "context" | "audit" | "recipients" | "definitions" | "from" | "unsubscribeSecret" | "publicUrl"
>;

interface TemplateRow extends Record<string, unknown> {
  subject: string | null;
  html: string | null;
  text: string | null;
}

interface RecipientFlags extends Record<string, unknown> {
  suppressed: boolean;
  opted_out: boolean;
}

interface LookupInput {
  key: string;
  tenantId: string | null;
  locales: string[];
  to: string;
  userId: string | undefined;
  category: string;
}

/**
 * Runs `fn` in the caller's unit of work when it is scoped to `tenantId`, else in one that is.
 * Outside any unit, a new one.
 */
function inTenantUnit<T>({ context }: Deps, tenantId: string | null, fn: () => Promise<T>): Promise<T> {
  const current = currentContext().tenantId ?? null;
  if (context.inUnitOfWork() && (current || null) === (tenantId || null)) return fn();
  return context.withTenant(tenantId, fn);
}

/**
 * The template (tenant override first, most specific locale first) from the tenant's place, and
 * whether the address is suppressed or the user opted out, from the email schema's place (one list
 * per deployment). One round trip when everything is one database, else one to each, in parallel.
 */
async function lookup({ context }: Deps, { key, tenantId, locales, to, userId, category }: LookupInput) {
  const template = sql`
    select subject, html, text from email.email_templates
    where key = ${key} and locale in ${locales}
      and (tenant_id is null or tenant_id = ${tenantId}::uuid)
    order by array_position(array[${sql.join(
      locales.map((l) => sql`${l}`),
      sql`, `,
    )}]::text[], locale),
             tenant_id is null
    limit 1`;
  const flags = sql`
    select exists (select 1 from email.suppressions where email = ${to.toLowerCase()}) as suppressed,
      coalesce((select opted_out from email.email_preferences
                where user_id = ${userId ?? null}::uuid and category = ${category}), false) as opted_out`;
  if (context.spansOneDatabase()) {
    const [row] = (await context.db().execute(sql`
      select t.subject, t.html, t.text, f.suppressed, f.opted_out
      from (${flags}) as f left join lateral (${template}) t on true
    `)) as unknown as (TemplateRow & RecipientFlags)[];
    return { found: row, flags: row! };
  }
  const [templates, flagRows] = await Promise.all([context.db().execute(template), context.schemaDb().execute(flags)]);
  return { found: (templates as unknown as TemplateRow[])[0], flags: (flagRows as unknown as RecipientFlags[])[0]! };
}

/**
 * The address and, when there is one, the user it belongs to. Mail addressed to a user's address
 * is that user's mail: their opt-outs apply and it carries their unsubscribe link (looked up only
 * for categories that can be opted out of).
 */
async function recipientOf(
  { recipients }: Deps,
  input: EnqueueEmailInput,
  category: string,
): Promise<{ to: string; userId?: string }> {
  if (input.to) {
    if (input.userId || isMandatoryCategory(category)) return { to: input.to, userId: input.userId };
    return { to: input.to, userId: await recipients.userIdOf(input.to) };
  }
  if (input.userId) {
    const to = await recipients.emailOf(input.userId);
    if (to) return { to, userId: input.userId };
  }
  throw EmailErrors.RECIPIENT_REQUIRED({ userId: input.userId });
}

/**
 * Queues an email in the caller's unit of work. Suppressed addresses and opted-out categories
 * are recorded as `skipped` with the reason; account and security mail cannot be opted out of.
 *
 * @example
 * await sdk.transaction(async () => {
 *   const user = await createUser(...);
 *   await sdk.email.enqueueEmail({ userId: user.id, to: user.email, template: "verify-email", data: { name: user.name, url } });
 * }); // the dispatcher sends it after the commit, never before, never if rolled back
 */
export async function enqueueEmail(deps: Deps, input: EnqueueEmailInput): Promise<EnqueueEmailResult> {
  const { context, audit } = deps;
  const definition = deps.definitions.get(input.template);
  if (!definition) throw EmailErrors.TEMPLATE_UNKNOWN_KEY({ key: input.template });
  const category = input.category ?? definition.category;
  const ambient = currentContext().tenantId;
  const tenantId = input.tenantId !== undefined ? input.tenantId : ambient === "*" ? null : (ambient ?? null);
  const locales = localeChain(input.locale);

  return inTenantUnit(deps, tenantId, async () => {
    const { to, userId } = await recipientOf(deps, input, category);
    const { found, flags } = await lookup(deps, { key: input.template, tenantId, locales, to, userId, category });
    if (!found?.subject) throw EmailErrors.TEMPLATE_NOT_FOUND({ key: input.template, locale: locales[0] });

    const rendered = renderContent(
      definition,
      { subject: found.subject, html: found.html!, text: found.text! },
      input.data,
    );
    const skipReason = flags.suppressed
      ? ("suppressed" as const)
      : flags.opted_out && !isMandatoryCategory(category)
        ? ("opted_out" as const)
        : undefined;
    const status: EmailSendStatus = skipReason ? "skipped" : "queued";
    const headers = unsubscribeHeaders(deps, userId, category) ?? null;

    // The row's keys point at the user and the tenant: a tenant placed in a database of its own
    // gets a copy of the ones it lacks there (a user who joined after the move).
    await context.ensureReferenced("email_sends", { user_id: userId, tenant_id: tenantId });
    const [row] = await context
      .db()
      .insert(emailSends)
      .values({
        tenantId,
        userId: userId ?? null,
        toAddress: to,
        fromAddress: deps.from,
        templateKey: input.template,
        locale: locales[0]!,
        category,
        ...rendered,
        headers,
        status,
        skipReason: skipReason ?? null,
        idempotencyKey: input.idempotencyKey ?? null,
      })
      .onConflictDoNothing({ target: emailSends.idempotencyKey })
      .returning({ id: emailSends.id });

    if (!row) {
      const [existing] = await context
        .db()
        .select({ id: emailSends.id, status: emailSends.status, skipReason: emailSends.skipReason })
        .from(emailSends)
        .where(eq(emailSends.idempotencyKey, input.idempotencyKey!));
      if (!existing) throw EmailErrors.SEND_NOT_FOUND({ idempotencyKey: input.idempotencyKey });
      return {
        id: existing.id,
        status: existing.status === "skipped" ? "skipped" : "queued",
        ...(existing.skipReason ? { skipReason: existing.skipReason as "suppressed" | "opted_out" } : {}),
        duplicate: true,
      };
    }
    // Delivered by PostgreSQL at commit, and dropped with a rollback.
    if (status === "queued") await context.db().execute(sql`select pg_notify(${EMAIL_CHANNEL}, '')`);
    await audit.recordAuditEvent({
      action: skipReason ? "email.skipped" : "email.queued",
      tenantId,
      target: { type: "email_send", id: row.id },
      metadata: { template: input.template, category, ...(skipReason ? { skipReason } : {}) },
    });
    return { id: row.id, status: status as "queued" | "skipped", ...(skipReason ? { skipReason } : {}) };
  });
}
