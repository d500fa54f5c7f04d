import type { Router } from "../../db/router.js";
import { createRoutes } from "../../http/routes.js";
import { createAuditService } from "./service.js";

export { auditLogs, auditSeals, auditSchema, type ActorType } from "./schema.js";
export type { AuditEventInput } from "./service.js";

export interface AuditModuleOptions {
  router: Router;
}

/** The audit module: the leaf every other module records its changes through. */
export function createAuditModule({ router }: AuditModuleOptions) {
  const service = createAuditService(router);
  return { ...service, routes: createRoutes() };
}

export type AuditModule = ReturnType<typeof createAuditModule>;
