import { randomBytes } from "node:crypto";
import { desc, eq, sql } from "drizzle-orm";
import { Resend } from "resend";
import { defineModule } from "../../db/module.js";
import { routerOf } from "../../db/module-context.js";
import type { Router } from "../../db/router.js";
import type { Logger } from "../../logger.js";
import type { AuditModule } from "../audit/index.js";
import { createEmailDatabases } from "./databases.js";
import { createDispatcher, type Dispatcher, type DispatcherOptions } from "./dispatcher.js";
import { createLogTransport } from "./log-transport.js";
import { EmailErrors } from "./errors.js";
import { createOutbox } from "./outbox.js";
import { createPreferences } from "./preferences.js";
import { devMessages, emailSends } from "./schema.js";
import { createTemplateStore } from "./template-store.js";
import { DEFAULT_TEMPLATES, type EmailTemplateDefinition } from "./templates.js";
import { createDevelopmentTransport, createResendTransport, type EmailTransport } from "./transport.js";
import { createWebhooks } from "./webhooks.js";

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
export type { EnqueueEmailInput, EnqueueEmailResult } from "./outbox.js";
export type { Dispatcher, DispatcherOptions } from "./dispatcher.js";
export type { CategoryPreference } from "./preferences.js";
export type { WebhookHeaders, WebhookResult } from "./webhooks.js";
export { createEmailRoutes, type EmailRoutesOptions, type PermissionGuard } from "./routes.js";

export interface EmailOptions {
  /** Sender of every message, e.g. `Acme <no-reply@acme.test>`. */
  from?: string;
  /** Without a key, the development transport records messages instead of sending them. */
  resendApiKey?: string;
  /**
   * `resend` (needs `resendApiKey`), `log` (nothing is delivered: one log line per message, without
   * its subject, body or links) or `development` (recorded for /dev/mail). Default: `resend` with a
   * key, else `development`.
   */
  transport?: "resend" | "log" | "development";
  /** Point the Resend SDK elsewhere (a local stand-in in tests). */
  resendBaseUrl?: string;
  /** Verifies Resend webhooks (Svix signatures). */
  webhookSecret?: string;
  /** Signs one-click unsubscribe tokens. Required with `resendApiKey`. */
  unsubscribeSecret?: string;
  /** Public base URL, for links in mail (unsubscribe). */
  publicUrl?: string;
  /** Run the dispatcher in this process (default false in the SDK; `npm start` turns it on). */
  dispatcher?: boolean;
  /** Tuning of the dispatcher (batch size, lease, backoff, poll interval, concurrency). */
  dispatcherOptions?: DispatcherOptions;
  /** Your own template definitions, beside the shipped defaults (same key: yours wins). */
  templates?: EmailTemplateDefinition[];
  /**
   * Outside `production` (given explicitly) the development transport's messages are readable
   * without a permission; otherwise they need `email.dev_messages:read`.
   */
  environment?: "development" | "test" | "production";
}

/**
 * The email module's port for recipients: who a user id is. Email cannot ask the module that owns
 * users (that module depends on email); `createSdk` fills the port with it.
 */
export interface EmailRecipients {
  /** The address of a user, or undefined when there is no such user. */
  emailOf(userId: string): Promise<string | undefined>;
}

/** What the email module needs from the modules created before it, and its options. */
export interface EmailDependencies {
  audit: AuditModule;
  options: EmailOptions;
  recipients: EmailRecipients;
}

export interface EmailModuleOptions {
  router: Router;
  audit: AuditModule;
  logger: Logger;
  options: EmailOptions;
}

const DEFAULT_FROM = "sv-sdk <no-reply@localhost>";

/**
 * The email module: templates, the transactional outbox, its dispatcher, webhooks, suppression and
 * preferences.
 *
 * @example
 * const email = createEmailModule({ router, audit, logger, options: { resendApiKey, unsubscribeSecret, from } });
 * await email.seed();
 * await email.startDispatcher();
 */
export function createEmailModule({ router, audit, logger, options }: EmailModuleOptions) {
  const transportName = options.transport ?? (options.resendApiKey ? "resend" : "development");
  if (transportName === "resend" && !options.resendApiKey) throw new Error("EmailOptions.transport 'resend' needs resendApiKey");
  if (options.resendApiKey && !options.unsubscribeSecret) {
    throw new Error(
      "EmailOptions.unsubscribeSecret is required when resendApiKey is set: it signs the one-click unsubscribe links real recipients get",
    );
  }
  if (options.unsubscribeSecret !== undefined && options.unsubscribeSecret.length < 32) {
    throw new Error("EmailOptions.unsubscribeSecret must be at least 32 characters");
  }
  const from = options.from ?? DEFAULT_FROM;
  let unsubscribeSecret: Buffer;
  if (options.unsubscribeSecret) {
    unsubscribeSecret = Buffer.from(options.unsubscribeSecret);
  } else {
    // Development only (no Resend key): links stop working when the process restarts.
    unsubscribeSecret = randomBytes(32);
    logger.warn("email: no unsubscribeSecret given; using a random per-process secret (development transport only)");
  }
  if (transportName === "development" && options.environment === "production") {
    logger.warn("email: no Resend API key in production; messages are recorded by the development transport, not sent");
  }

  const definitions = new Map<string, EmailTemplateDefinition>();
  for (const definition of [...DEFAULT_TEMPLATES, ...(options.templates ?? [])]) definitions.set(definition.key, definition);

  const resend = options.resendApiKey
    ? new Resend(options.resendApiKey, { baseUrl: options.resendBaseUrl })
    : // The verifier needs an instance; this one never makes a request.
      new Resend("re_webhook_verification_only", { baseUrl: "http://127.0.0.1:9" });
  const transport =
    transportName === "resend"
      ? createResendTransport(resend)
      : transportName === "log"
        ? createLogTransport(logger)
        : createDevelopmentTransport(router);

  const store = createTemplateStore({ router, audit, definitions });
  const preferences = createPreferences({
    router,
    audit,
    categories: [...definitions.values()].map((d) => d.category),
    unsubscribeSecret,
    publicUrl: options.publicUrl,
  });
  const outbox = createOutbox({ router, audit, definitions, preferences, from });
  const webhooks = createWebhooks({ router, audit, resend, webhookSecret: options.webhookSecret });

  const databases = createEmailDatabases(router);
  const dispatchers = new Set<Dispatcher>();
  let defaultDispatcher: Dispatcher | undefined;
  const newDispatcher = (overrides: DispatcherOptions = {}) => {
    // The dispatcher reads a transport's name only for its log lines and audit metadata; EmailTransport
    // (transport.ts) does not list `log` among its names yet.
    const dispatcher = createDispatcher(
      { router, audit, logger, transport: transport as EmailTransport, from },
      { ...options.dispatcherOptions, ...overrides },
    );
    dispatchers.add(dispatcher);
    return dispatcher;
  };
  const dispatcherOf = () => (defaultDispatcher ??= newDispatcher());

  const module = {
    /** `resend`, `log`, or `development` (the default without an API key). */
    transport: transport.name,
    /** Whether development messages are readable without a permission. */
    devMessagesOpen: transport.name === "development" && !!options.environment && options.environment !== "production",
    /** The template definitions, by key. */
    definitions: definitions as ReadonlyMap<string, EmailTemplateDefinition>,

    /** Seeds the default templates (idempotent). */
    seed: () => store.seedTemplates(),
    enqueueEmail: outbox.enqueueEmail,
    listTemplates: store.listTemplates,
    getTemplate: store.getTemplate,
    createTemplate: store.createTemplate,
    updateTemplate: store.updateTemplate,
    deleteTemplate: store.deleteTemplate,
    previewTemplate: store.previewTemplate,
    /**
     * Renders a stored template (the tenant's override, else the default) with `data`.
     *
     * @example
     * const { subject, html, text } = await sdk.email.renderTemplate({ key: "welcome", data: { name: "Ada" } });
     */
    renderTemplate: ({ tenantId = null, key, locale, data }: { tenantId?: string | null; key: string; locale?: string; data: Record<string, unknown> }) =>
      store.previewTemplate({ tenantId, input: { key, locale, data } }),

    handleResendWebhook: webhooks.handleResendWebhook,
    getPreferences: preferences.getPreferences,
    updatePreferences: preferences.updatePreferences,
    unsubscribe: preferences.unsubscribe,
    createUnsubscribeToken: preferences.createUnsubscribeToken,

    /**
     * A new dispatcher on this module's transport (not started). Several may run at once, here or in
     * other processes: claims never overlap.
     *
     * @example
     * const dispatcher = sdk.email.createDispatcher({ batchSize: 50 });
     * await dispatcher.start();
     */
    createDispatcher: newDispatcher,
    /**
     * Starts this process's dispatcher: it wakes on NOTIFY and polls as a fallback.
     *
     * @example
     * await sdk.email.startDispatcher(); // npm start and npm run email:worker do this
     */
    startDispatcher: () => dispatcherOf().start(),
    /** One claim-send-record cycle of this process's dispatcher; returns the rows claimed. */
    dispatchOnce: () => dispatcherOf().dispatchOnce(),
    /** Stops every dispatcher of this module, returning their claimed rows to the queue. Idempotent. */
    async stop() {
      await Promise.all([...dispatchers].map((d) => d.stop()));
    },

    /**
     * One send, across tenants and the databases they live in (for operators and tests).
     *
     * @example
     * const send = await sdk.email.getSend(id);
     */
    async getSend(id: string) {
      const hit = await databases.findInAny(async () => {
        const [row] = await router.db("email").select().from(emailSends).where(eq(emailSends.id, id));
        return row;
      });
      if (!hit) throw EmailErrors.SEND_NOT_FOUND({ id });
      return hit.found;
    },

    /**
     * Messages the development transport recorded, in every database, newest first.
     *
     * @example
     * const [latest] = await sdk.email.listDevMessages({ to: "ada@example.test" });
     */
    async listDevMessages({ limit = 50, to }: { limit?: number; to?: string } = {}) {
      if (transport.name !== "development") throw EmailErrors.DEV_TRANSPORT_INACTIVE();
      const count = Math.min(Math.max(limit, 1), 500);
      // Each database's newest `count`, merged: a message is recorded beside its send (its tenant's database).
      const perDatabase = await Promise.all(
        databases.all().map((database) =>
          router
            .database(database)
            .select()
            .from(devMessages)
            .where(to ? sql`lower(${devMessages.toAddress}) = ${to.toLowerCase()}` : undefined)
            .orderBy(desc(devMessages.createdAt))
            .limit(count),
        ),
      );
      return perDatabase
        .flat()
        .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())
        .slice(0, count);
    },
    /** @example const message = await sdk.email.getDevMessage(id); */
    async getDevMessage(id: string) {
      if (transport.name !== "development") throw EmailErrors.DEV_TRANSPORT_INACTIVE();
      for (const database of databases.all()) {
        const [row] = await router.database(database).select().from(devMessages).where(eq(devMessages.id, id));
        if (row) return row;
      }
      throw EmailErrors.DEV_MESSAGE_NOT_FOUND({ id });
    },
  };

  if (options.dispatcher) {
    // The factory is synchronous; a failure to start is logged, and `startDispatcher()` can retry.
    module.startDispatcher().catch((error: Error) => logger.error("email dispatcher failed to start", { error: error.message }));
  }
  return module;
}

export type EmailModule = ReturnType<typeof createEmailModule>;

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
    { name: "email_templates_tenant_fk", from: "email.email_templates.tenant_id", to: "auth.organizations.id", onDelete: "cascade" },
    { name: "email_sends_tenant_fk", from: "email.email_sends.tenant_id", to: "auth.organizations.id", onDelete: "set null" },
    { name: "email_sends_user_fk", from: "email.email_sends.user_id", to: "auth.users.id", onDelete: "set null" },
    { name: "email_preferences_user_fk", from: "email.email_preferences.user_id", to: "auth.users.id", onDelete: "cascade" },
  ],
  create: (context, deps: EmailDependencies) =>
    createEmailModule({ router: routerOf(context), audit: deps.audit, logger: context.logger, options: deps.options }),
});
