/**
 * What `sdk.email` offers: the module's declared interface (its index exports it). Kept apart from
 * the index so the module's own files (its HTTP files, its factory) can name it without importing
 * their own face.
 */
import type { Dispatcher, DispatcherOptions } from "./dispatcher.js";
import type { EnqueueEmailInput, EnqueueEmailResult } from "./outbox.js";
import type { CategoryPreference } from "./preferences.js";
import type { devMessages, emailSends } from "./schema.js";
import type {
  CreateTemplateInput,
  EmailTemplateRow,
  PreviewTemplateInput,
  UpdateTemplateInput,
} from "./template-store.js";
import type { EmailTemplateDefinition, TemplateContent } from "./templates.js";
import type { WebhookHeaders, WebhookResult } from "./webhooks.js";

export type EmailSend = typeof emailSends.$inferSelect;
export type DevMessage = typeof devMessages.$inferSelect;

/** `tenantId` picks whose templates (omitted or null: the defaults only). */
interface InTenant {
  tenantId?: string | null;
}

/** What `sdk.email` offers. */
export interface EmailModule {
  /** `resend`, `log`, or `development` (the default without an API key). */
  readonly transport: "resend" | "log" | "development";
  /** Whether development messages are readable without a permission. */
  readonly devMessagesOpen: boolean;
  /** The template definitions, by key. */
  readonly definitions: ReadonlyMap<string, EmailTemplateDefinition>;

  /** Seeds the default templates (idempotent). */
  seed(): Promise<void>;
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
  enqueueEmail(input: EnqueueEmailInput): Promise<EnqueueEmailResult>;

  /**
   * The templates a tenant sees: its overrides and the defaults.
   *
   * @example
   * const templates = await sdk.email.listTemplates({ tenantId });
   */
  listTemplates(input?: InTenant & { key?: string }): Promise<EmailTemplateRow[]>;
  /** @example const template = await sdk.email.getTemplate({ tenantId, id }); */
  getTemplate(input: InTenant & { id: string }): Promise<EmailTemplateRow>;
  /**
   * Creates a template: inside a tenant, that tenant's override of the default with the same key and
   * locale. Its content is Liquid, checked against the key's definition.
   *
   * @example
   * await sdk.email.createTemplate({ tenantId, input: { key: "welcome", subject: "Hi {{name}}", html, text } });
   */
  createTemplate(input: InTenant & { input: CreateTemplateInput }): Promise<EmailTemplateRow>;
  /**
   * Updates a template's content and bumps its version.
   *
   * @example
   * await sdk.email.updateTemplate({ tenantId, id, input: { subject: "Welcome aboard, {{name}}" } });
   */
  updateTemplate(input: InTenant & { id: string; input: UpdateTemplateInput }): Promise<EmailTemplateRow>;
  /**
   * Deletes a template (a tenant override, or a default not shipped with a definition).
   *
   * @example
   * await sdk.email.deleteTemplate({ tenantId, id });
   */
  deleteTemplate(input: InTenant & { id: string }): Promise<void>;
  /**
   * Renders a template (stored, or unsaved `content`) with sample data, without sending anything.
   *
   * @example
   * const { subject, html, text } = await sdk.email.previewTemplate({ tenantId, input: { key: "verify-email" } });
   */
  previewTemplate(input: InTenant & { input: PreviewTemplateInput }): Promise<TemplateContent>;
  /**
   * Renders a stored template (the tenant's override, else the default) with `data`.
   *
   * @example
   * const { subject, html, text } = await sdk.email.renderTemplate({ key: "welcome", data: { name: "Ada" } });
   */
  renderTemplate(
    input: InTenant & { key: string; locale?: string; data: Record<string, unknown> },
  ): Promise<TemplateContent>;

  /**
   * Verifies and applies one Resend webhook delivery. Pass the raw body, before any JSON parsing: the
   * signature covers its exact bytes.
   *
   * @example
   * app.post("/hooks/resend", async (c) => c.json(await sdk.email.handleResendWebhook(await c.req.text(), {
   *   "svix-id": c.req.header("svix-id"), "svix-timestamp": c.req.header("svix-timestamp"),
   *   "svix-signature": c.req.header("svix-signature"),
   * })));
   */
  handleResendWebhook(rawBody: string, headers: WebhookHeaders): Promise<WebhookResult>;
  /**
   * A user's preference for every category.
   *
   * @example
   * const preferences = await sdk.email.getPreferences(userId);
   */
  getPreferences(userId: string): Promise<CategoryPreference[]>;
  /**
   * Opts a user in or out of categories. Account and security mail cannot be opted out of.
   *
   * @example
   * await sdk.email.updatePreferences(userId, [{ category: "marketing", optedOut: true }]);
   */
  updatePreferences(userId: string, changes: { category: string; optedOut: boolean }[]): Promise<CategoryPreference[]>;
  /**
   * Applies a one-click unsubscribe token: opts its user out of its category. Idempotent.
   *
   * @example
   * await sdk.email.unsubscribe(token); // from POST /api/v1/email/unsubscribe?token=…
   */
  unsubscribe(token: string): Promise<{ userId: string; category: string }>;
  /**
   * A signed one-click unsubscribe token for one user and category.
   *
   * @example
   * const token = sdk.email.createUnsubscribeToken(userId, "marketing");
   */
  createUnsubscribeToken(userId: string, category: string): string;

  /**
   * A new dispatcher on this module's transport (not started). Several may run at once, here or in
   * other processes: claims never overlap.
   *
   * @example
   * const dispatcher = sdk.email.createDispatcher({ batchSize: 50 });
   * await dispatcher.start();
   */
  createDispatcher(overrides?: DispatcherOptions): Dispatcher;
  /**
   * Starts this process's dispatcher: it wakes on NOTIFY and polls as a fallback.
   *
   * @example
   * await sdk.email.startDispatcher(); // npm start and npm run email:worker do this
   */
  startDispatcher(): Promise<void>;
  /** One claim-send-record cycle of this process's dispatcher; returns the rows claimed. */
  dispatchOnce(): Promise<number>;
  /** Stops every dispatcher of this module, returning their claimed rows to the queue. Idempotent. */
  stop(): Promise<void>;

  /**
   * One send, across tenants and the databases they live in (for operators and tests).
   *
   * @example
   * const send = await sdk.email.getSend(id);
   */
  getSend(id: string): Promise<EmailSend>;
  /**
   * Messages the development transport recorded, in every database, newest first.
   *
   * @example
   * const [latest] = await sdk.email.listDevMessages({ to: "ada@example.test" });
   */
  listDevMessages(input?: { limit?: number; to?: string }): Promise<DevMessage[]>;
  /** @example const message = await sdk.email.getDevMessage(id); */
  getDevMessage(id: string): Promise<DevMessage>;
}
