import type { Router } from "../../db/router.js";
import { createRoutes } from "../../http/routes.js";
import type { Logger } from "../../logger.js";
import type { AuditModule } from "../audit/index.js";
import type { PermissionsModule } from "../permissions/index.js";

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

export interface EmailOptions {
  /** Sender of every message, e.g. `Acme <no-reply@acme.test>`. */
  from?: string;
  /** Without a key, the development transport records messages instead of sending them. */
  resendApiKey?: string;
  /** Point the Resend SDK elsewhere (a local stand-in in tests). */
  resendBaseUrl?: string;
  /** Verifies Resend webhooks (Svix signatures). */
  webhookSecret?: string;
  /** Signs one-click unsubscribe tokens. */
  unsubscribeSecret?: string;
  /** Public base URL, for links in mail (unsubscribe). */
  publicUrl?: string;
  /** Run the dispatcher in this process (default false in the SDK; `npm start` turns it on). */
  dispatcher?: boolean;
}

export interface EmailModuleOptions {
  router: Router;
  audit: AuditModule;
  logger: Logger;
  options: EmailOptions;
}

/** The email module: templates, the transactional outbox and its dispatcher. */
export function createEmailModule(_options: EmailModuleOptions) {
  return {
    /** Seeds the default templates (idempotent). */
    seed: async () => {},
    /** Stops background work (the dispatcher), returning claimed rows. */
    stop: async () => {},
  };
}

export type EmailModule = ReturnType<typeof createEmailModule>;

export interface EmailRoutesOptions {
  email: EmailModule;
  permissions: PermissionsModule;
}

/** `/api/v1/email` routes. */
export function createEmailRoutes(_options: EmailRoutesOptions) {
  return createRoutes();
}
