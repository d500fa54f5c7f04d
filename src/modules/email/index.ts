import type { Router } from "../../db/router.js";
import { createRoutes } from "../../http/routes.js";
import type { AuditModule } from "../audit/index.js";

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

export interface EmailModuleOptions {
  router: Router;
  audit: AuditModule;
}

/** The email module: templates, the transactional outbox and its dispatcher. */
export function createEmailModule(_options: EmailModuleOptions) {
  return {
    /** Seeds the default templates (idempotent). */
    seed: async () => {},
    routes: createRoutes(),
    /** Stops background work (the dispatcher). */
    stop: async () => {},
  };
}

export type EmailModule = ReturnType<typeof createEmailModule>;
