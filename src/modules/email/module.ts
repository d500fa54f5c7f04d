/**
 * Composes the email module from its options: checks them, picks the transport, and binds the verbs
 * to their dependencies. The dispatchers are the module's only state.
 */
import { randomBytes } from "node:crypto";
import { Resend } from "resend";
import type { ModuleContext } from "../../db/module.js";
import { createDispatcher, type Dispatcher, type DispatcherOptions } from "./dispatcher.js";
import { EmailErrors } from "./errors.js";
import type { EmailModule } from "./api.js";
import type { EmailDeps } from "./internal.js";
import { createLogTransport } from "./log-transport.js";
import type { EmailDependencies } from "./options.js";
import { enqueueEmail } from "./outbox.js";
import { createUnsubscribeToken, getPreferences, unsubscribe, updatePreferences } from "./preferences.js";
import { getDevMessage, getSend, listDevMessages } from "./sends.js";
import {
  createTemplate,
  deleteTemplate,
  getTemplate,
  listTemplates,
  previewTemplate,
  renderTemplate,
  seedTemplates,
  updateTemplate,
} from "./template-store.js";
import { DEFAULT_TEMPLATES, type EmailTemplateDefinition } from "./templates.js";
import { createDevelopmentTransport, createResendTransport, type EmailTransport } from "./transport.js";
import { handleResendWebhook, type WebhookDeps } from "./webhooks.js";

const DEFAULT_FROM = "sv-sdk <no-reply@localhost>";

export function createEmailModule(
  context: ModuleContext,
  { audit, options, recipients }: EmailDependencies,
): EmailModule {
  const { logger } = context;
  const transportName = options.transport ?? (options.resendApiKey ? "resend" : "development");
  if (transportName === "resend" && !options.resendApiKey)
    throw new Error("EmailOptions.transport 'resend' needs resendApiKey");
  if (options.resendApiKey && !options.unsubscribeSecret) {
    throw new Error(
      "EmailOptions.unsubscribeSecret is required when resendApiKey is set: it signs the one-click unsubscribe links real recipients get",
    );
  }
  if (options.unsubscribeSecret !== undefined && options.unsubscribeSecret.length < 32) {
    throw new Error("EmailOptions.unsubscribeSecret must be at least 32 characters");
  }
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
  for (const definition of [...DEFAULT_TEMPLATES, ...(options.templates ?? [])])
    definitions.set(definition.key, definition);

  const resend = options.resendApiKey
    ? new Resend(options.resendApiKey, { baseUrl: options.resendBaseUrl })
    : // The verifier needs an instance; this one never makes a request.
      new Resend("re_webhook_verification_only", { baseUrl: "http://127.0.0.1:9" });
  const transport =
    transportName === "resend"
      ? createResendTransport(resend)
      : transportName === "log"
        ? createLogTransport(logger)
        : createDevelopmentTransport(context);

  const deps: EmailDeps = {
    context,
    audit,
    recipients,
    definitions,
    from: options.from ?? DEFAULT_FROM,
    unsubscribeSecret,
    publicUrl: options.publicUrl,
  };
  const webhookDeps: WebhookDeps = { context, audit, resend, webhookSecret: options.webhookSecret };
  const developmentOnly = () => {
    if (transport.name !== "development") throw EmailErrors.DEV_TRANSPORT_INACTIVE();
  };

  const dispatchers = new Set<Dispatcher>();
  let defaultDispatcher: Dispatcher | undefined;
  const newDispatcher = (overrides: DispatcherOptions = {}) => {
    // The dispatcher reads a transport's name only for its log lines and audit metadata; EmailTransport
    // (transport.ts) does not list `log` among its names yet.
    const dispatcher = createDispatcher(
      { context, audit, logger, transport: transport as EmailTransport, from: deps.from },
      { ...options.dispatcherOptions, ...overrides },
    );
    dispatchers.add(dispatcher);
    return dispatcher;
  };
  const dispatcherOf = () => (defaultDispatcher ??= newDispatcher());

  const module: EmailModule = {
    transport: transport.name,
    devMessagesOpen: transport.name === "development" && !!options.environment && options.environment !== "production",
    definitions,

    seed: () => seedTemplates(deps),
    enqueueEmail: (input) => enqueueEmail(deps, input),
    listTemplates: (input) => listTemplates(deps, input),
    getTemplate: (input) => getTemplate(deps, input),
    createTemplate: (input) => createTemplate(deps, input),
    updateTemplate: (input) => updateTemplate(deps, input),
    deleteTemplate: (input) => deleteTemplate(deps, input),
    previewTemplate: (input) => previewTemplate(deps, input),
    renderTemplate: (input) => renderTemplate(deps, input),

    handleResendWebhook: (rawBody, headers) => handleResendWebhook(webhookDeps, rawBody, headers),
    getPreferences: (userId) => getPreferences(deps, userId),
    updatePreferences: (userId, changes) => updatePreferences(deps, userId, changes),
    unsubscribe: (token) => unsubscribe(deps, token),
    createUnsubscribeToken: (userId, category) => createUnsubscribeToken(deps, userId, category),

    createDispatcher: newDispatcher,
    startDispatcher: () => dispatcherOf().start(),
    dispatchOnce: () => dispatcherOf().dispatchOnce(),
    async stop() {
      await Promise.all([...dispatchers].map((d) => d.stop()));
    },

    getSend: (id) => getSend(deps, id),
    async listDevMessages(input) {
      developmentOnly();
      return listDevMessages(deps, input);
    },
    async getDevMessage(id) {
      developmentOnly();
      return getDevMessage(deps, id);
    },
  };

  if (options.dispatcher) {
    // The factory is synchronous; a failure to start is logged, and `startDispatcher()` can retry.
    module
      .startDispatcher()
      .catch((error: Error) => logger.error("email dispatcher failed to start", { error: error.message }));
  }
  return module;
}
