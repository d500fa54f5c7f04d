/**
 * Templates in the database: seeding the shipped defaults, CRUD (tenant overrides fall back to the
 * default), resolution for a send, and previews. Every read and write runs under the caller's tenant
 * so row-level security shows a tenant its own overrides and the defaults, never another tenant's.
 */
import { and, asc, eq, inArray, isNull, or, sql } from "drizzle-orm";
import { EmailErrors } from "./errors.js";
import type { EmailDeps } from "./internal.js";
import { emailTemplates } from "./schema.js";
import {
  checkTemplateContent,
  renderContent,
  type EmailTemplateDefinition,
  type TemplateContent,
} from "./templates.js";

export type EmailTemplateRow = typeof emailTemplates.$inferSelect;

export interface CreateTemplateInput extends TemplateContent {
  key: string;
  locale?: string;
}

export type UpdateTemplateInput = Partial<TemplateContent>;

export interface PreviewTemplateInput {
  key: string;
  locale?: string;
  /** Unsaved content to preview; the stored template when omitted. */
  content?: TemplateContent;
  /** The definition's sample data when omitted. */
  data?: Record<string, unknown>;
}

type Deps = Pick<EmailDeps, "context" | "audit" | "definitions">;

/** Locales to try, most specific first: `de-AT` → `de-AT`, `de`, `en`. */
export function localeChain(locale: string | undefined): string[] {
  const chain = [locale, locale?.split("-")[0], "en"].filter((l): l is string => !!l);
  return [...new Set(chain)];
}

/** `case locale when 'de-AT' then 0 when 'de' then 1 ... end`: the most specific locale sorts first. */
function localePreference(locales: string[]) {
  const whens = locales.map((l, i) => sql`when ${l} then ${i}`);
  return sql`case ${emailTemplates.locale} ${sql.join(whens, sql` `)} end`;
}

const scoped = <T>({ context }: Deps, tenantId: string | null, fn: () => Promise<T>) =>
  context.withTenant(tenantId, fn);

// Defence in depth beside row-level security: a tenant sees its own rows and the defaults.
const visibleTo = (tenantId: string | null) =>
  tenantId
    ? or(isNull(emailTemplates.tenantId), eq(emailTemplates.tenantId, tenantId))
    : isNull(emailTemplates.tenantId);

function definitionOf({ definitions }: Deps, key: string): EmailTemplateDefinition {
  const definition = definitions.get(key);
  if (!definition) throw EmailErrors.TEMPLATE_UNKNOWN_KEY({ key, known: [...definitions.keys()] });
  return definition;
}

async function findVisible({ context }: Deps, tenantId: string | null, id: string): Promise<EmailTemplateRow> {
  const [row] = await context
    .db()
    .select()
    .from(emailTemplates)
    .where(and(eq(emailTemplates.id, id), visibleTo(tenantId)));
  if (!row) throw EmailErrors.TEMPLATE_NOT_FOUND({ id });
  return row;
}

/**
 * Inserts the default content of every definition (locale `en`, no tenant); existing rows, edited
 * or not, are left alone. Safe to run on every start.
 *
 * @example
 * await sdk.email.seed();
 */
export async function seedTemplates(deps: Deps): Promise<void> {
  const rows = [...deps.definitions.values()].map((d) => ({ key: d.key, locale: "en", tenantId: null, ...d.defaults }));
  await scoped(deps, null, () => deps.context.db().insert(emailTemplates).values(rows).onConflictDoNothing());
}

/**
 * The templates a tenant sees: its overrides and the defaults (`tenantId` null: the defaults only).
 *
 * @example
 * const templates = await sdk.email.listTemplates({ tenantId });
 */
export function listTemplates(deps: Deps, { tenantId = null, key }: { tenantId?: string | null; key?: string } = {}) {
  return scoped(deps, tenantId, () =>
    deps.context
      .db()
      .select()
      .from(emailTemplates)
      .where(and(visibleTo(tenantId), key ? eq(emailTemplates.key, key) : undefined))
      .orderBy(asc(emailTemplates.key), asc(emailTemplates.locale), sql`${emailTemplates.tenantId} nulls first`),
  );
}

/** @example const template = await sdk.email.getTemplate({ tenantId, id }); */
export function getTemplate(deps: Deps, { tenantId = null, id }: { tenantId?: string | null; id: string }) {
  return scoped(deps, tenantId, () => findVisible(deps, tenantId, id));
}

/**
 * Creates a template: inside a tenant, that tenant's override of the default with the same key and
 * locale. Its content is Liquid; it must parse, read only variables the key's definition declares,
 * keep the subject on one line and render the definition's sample data within the limits.
 *
 * @example
 * await sdk.email.createTemplate({ tenantId, input: { key: "welcome", subject: "Hi {{name}}", html, text } });
 */
export async function createTemplate(
  deps: Deps,
  { tenantId = null, input }: { tenantId?: string | null; input: CreateTemplateInput },
) {
  const definition = definitionOf(deps, input.key);
  const content = { subject: input.subject, html: input.html, text: input.text };
  checkTemplateContent(definition, content);
  return scoped(deps, tenantId, async () => {
    const [row] = await deps.context
      .db()
      .insert(emailTemplates)
      .values({ tenantId, key: input.key, locale: input.locale ?? "en", ...content })
      .returning();
    await deps.audit.recordAuditEvent({
      action: "email.template_created",
      tenantId,
      target: { type: "email_template", id: row!.id },
      metadata: { key: row!.key, locale: row!.locale },
      changes: { after: content },
    });
    return row!;
  });
}

/**
 * Updates a template's content and bumps its version.
 *
 * @example
 * await sdk.email.updateTemplate({ tenantId, id, input: { subject: "Welcome aboard, {{name}}" } });
 */
export function updateTemplate(
  deps: Deps,
  { tenantId = null, id, input }: { tenantId?: string | null; id: string; input: UpdateTemplateInput },
) {
  return scoped(deps, tenantId, async () => {
    const before = await findVisible(deps, tenantId, id);
    // A tenant may read the defaults but only write its own overrides.
    if (before.tenantId !== tenantId) throw EmailErrors.TEMPLATE_NOT_FOUND({ id });
    const content = {
      subject: input.subject ?? before.subject,
      html: input.html ?? before.html,
      text: input.text ?? before.text,
    };
    checkTemplateContent(definitionOf(deps, before.key), content);
    const [row] = await deps.context
      .db()
      .update(emailTemplates)
      .set({ ...content, version: sql`${emailTemplates.version} + 1`, updatedAt: new Date() })
      .where(eq(emailTemplates.id, id))
      .returning();
    await deps.audit.recordAuditEvent({
      action: "email.template_updated",
      tenantId,
      target: { type: "email_template", id },
      metadata: { key: before.key, locale: before.locale, version: row!.version },
      changes: {
        before: { subject: before.subject, html: before.html, text: before.text },
        after: content,
      },
    });
    return row!;
  });
}

/**
 * Deletes a template (a tenant override, or a default not shipped with a definition).
 *
 * @example
 * await sdk.email.deleteTemplate({ tenantId, id });
 */
export function deleteTemplate(deps: Deps, { tenantId = null, id }: { tenantId?: string | null; id: string }) {
  return scoped(deps, tenantId, async () => {
    const before = await findVisible(deps, tenantId, id);
    if (before.tenantId !== tenantId) throw EmailErrors.TEMPLATE_NOT_FOUND({ id });
    // Sends of a key fall back to its `en` default; deleting that would leave them nothing.
    if (before.tenantId === null && before.locale === "en" && deps.definitions.has(before.key)) {
      throw EmailErrors.TEMPLATE_IS_DEFAULT({ id, key: before.key });
    }
    await deps.context.db().delete(emailTemplates).where(eq(emailTemplates.id, id));
    await deps.audit.recordAuditEvent({
      action: "email.template_deleted",
      tenantId,
      target: { type: "email_template", id },
      metadata: { key: before.key, locale: before.locale },
      changes: { before: { subject: before.subject, html: before.html, text: before.text } },
    });
  });
}

/**
 * Renders a template (stored, or unsaved `content`) with sample data, without sending anything.
 *
 * @example
 * const { subject, html, text } = await sdk.email.previewTemplate({ tenantId, input: { key: "verify-email" } });
 */
export async function previewTemplate(
  deps: Deps,
  { tenantId = null, input }: { tenantId?: string | null; input: PreviewTemplateInput },
) {
  const definition = definitionOf(deps, input.key);
  return scoped(deps, tenantId, async () => {
    let content = input.content;
    if (content) checkTemplateContent(definition, content);
    else content = await resolveContent(deps, tenantId, input.key, input.locale);
    return renderContent(definition, content, input.data ?? definition.sample);
  });
}

/**
 * Renders a stored template (the tenant's override, else the default) with `data`.
 *
 * @example
 * const { subject, html, text } = await sdk.email.renderTemplate({ key: "welcome", data: { name: "Ada" } });
 */
export function renderTemplate(
  deps: Deps,
  {
    tenantId = null,
    key,
    locale,
    data,
  }: { tenantId?: string | null; key: string; locale?: string; data: Record<string, unknown> },
) {
  return previewTemplate(deps, { tenantId, input: { key, locale, data } });
}

async function resolveContent(
  { context }: Deps,
  tenantId: string | null,
  key: string,
  locale?: string,
): Promise<TemplateContent> {
  const locales = localeChain(locale);
  const [row] = await context
    .db()
    .select({ subject: emailTemplates.subject, html: emailTemplates.html, text: emailTemplates.text })
    .from(emailTemplates)
    .where(and(eq(emailTemplates.key, key), visibleTo(tenantId), inArray(emailTemplates.locale, locales)))
    .orderBy(localePreference(locales), sql`${emailTemplates.tenantId} is null`)
    .limit(1);
  if (!row) throw EmailErrors.TEMPLATE_NOT_FOUND({ key, locale: locale ?? "en" });
  return row;
}
