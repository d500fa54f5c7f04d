/**
 * The email module: templates in the database, the transactional outbox and its dispatcher, Resend
 * webhooks, suppressions, preferences and one-click unsubscribe.
 */
import { defineModule } from "../../db/module.js";
import { createEmailModule } from "./module.js";
import type { EmailDependencies } from "./options.js";

export {
  devMessages,
  emailEvents,
  emailPreferences,
  emailSchema,
  emailSends,
  emailTemplates,
  suppressions,
  type EmailSendStatus,
} from "./schema.js";
export { EmailErrors } from "./errors.js";
export {
  DEFAULT_TEMPLATES,
  MANDATORY_CATEGORIES,
  OPTIONAL_CATEGORIES,
  defineEmailTemplate,
  type EmailTemplateDefinition,
  type TemplateContent,
} from "./templates.js";
export type { EmailDependencies, EmailOptions, EmailRecipients } from "./options.js";
export type { EnqueueEmailInput, EnqueueEmailResult } from "./outbox.js";
export type { Dispatcher, DispatcherOptions } from "./dispatcher.js";
export type { CategoryPreference } from "./preferences.js";
export type {
  CreateTemplateInput,
  EmailTemplateRow,
  PreviewTemplateInput,
  UpdateTemplateInput,
} from "./template-store.js";
export type { WebhookHeaders, WebhookResult } from "./webhooks.js";
export { createEmailRoutes, type EmailRoutesOptions } from "./routes.js";
export { createMailViewer, type MailViewerOptions } from "./viewer.js";
export type { DevMessage, EmailModule, EmailSend } from "./api.js";

/** The email module's descriptor. Suppressions and preferences are one list per deployment: they stay with the schema. */
export const emailModule = defineModule({
  name: "email",
  schema: "email",
  tables: {
    email_templates: "tenant",
    email_sends: "tenant",
    email_events: "tenant",
    dev_messages: "tenant",
    email_preferences: "schema",
    suppressions: "schema",
  },
  crossKeys: [
    {
      name: "email_templates_tenant_fk",
      from: "email.email_templates.tenant_id",
      to: "auth.organizations.id",
      onDelete: "cascade",
    },
    {
      name: "email_sends_tenant_fk",
      from: "email.email_sends.tenant_id",
      to: "auth.organizations.id",
      onDelete: "set null",
    },
    { name: "email_sends_user_fk", from: "email.email_sends.user_id", to: "auth.users.id", onDelete: "set null" },
    {
      name: "email_preferences_user_fk",
      from: "email.email_preferences.user_id",
      to: "auth.users.id",
      onDelete: "cascade",
    },
  ],
  create: (context, deps: EmailDependencies) => createEmailModule(context, deps),
});
