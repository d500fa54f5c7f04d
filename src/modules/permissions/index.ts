import type { Router } from "../../db/router.js";
import { createRoutes } from "../../http/routes.js";
import type { AuditModule } from "../audit/index.js";
import { seedBuiltInRoles } from "./seed.js";

export { permissionCache, roleInheritance, rolePermissions, roles, userRoles, permissionsSchema } from "./schema.js";
export { BUILT_IN_ROLES, type BuiltInRole } from "./seed.js";

export interface PermissionsModuleOptions {
  router: Router;
  audit: AuditModule;
}

/** The permissions module: the one authority for authorization. */
export function createPermissionsModule({ router }: PermissionsModuleOptions) {
  return {
    /** Seeds the built-in roles (idempotent). */
    seed: () => seedBuiltInRoles(router),
    /** Stops background work (the invalidation listener). */
    stop: async () => {},
  };
}

export type PermissionsModule = ReturnType<typeof createPermissionsModule>;

export interface PermissionsRoutesOptions {
  permissions: PermissionsModule;
}

/** `/api/v1/permissions` routes (and `/api/v1/me/permissions`, mounted by the app). */
export function createPermissionsRoutes(_options: PermissionsRoutesOptions) {
  return createRoutes();
}
