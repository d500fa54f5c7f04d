import type { Router } from "../../db/router.js";
import { createRoutes } from "../../http/routes.js";
import type { PermissionsModule } from "../permissions/index.js";
import { createAuditService } from "./service.js";

export { auditLogs, auditSeals, auditSchema, type ActorType } from "./schema.js";
export type { AuditEventInput } from "./service.js";

export interface AuditModuleOptions {
  router: Router;
}

/** The audit module: the leaf every other module records its changes through. */
export function createAuditModule({ router }: AuditModuleOptions) {
  return { ...createAuditService(router) };
}

export type AuditModule = ReturnType<typeof createAuditModule>;

export interface AuditRoutesOptions {
  audit: AuditModule;
  permissions: PermissionsModule;
}

/** `/api/v1/audit` routes. */
export function createAuditRoutes(_options: AuditRoutesOptions) {
  return createRoutes();
}
