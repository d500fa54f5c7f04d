import { defineModule } from "../../db/module.js";
import { routerOf } from "../../db/module-context.js";
import type { Router } from "../../db/router.js";
import type { AuditModule } from "../audit/index.js";
import { createPermissionCache, type PermissionCacheOptions } from "./cache.js";
import { createChecks } from "./checks.js";
import { seedBuiltInRoles } from "./seed.js";
import { createPermissionsService } from "./service.js";

export { permissionCache, roleInheritance, rolePermissions, roles, userRoles, permissionsSchema } from "./schema.js";
export { BUILT_IN_ROLES, type BuiltInRole } from "./seed.js";
export { PermissionsErrors } from "./errors.js";
export { isValidPermission } from "./matcher.js";
export {
  MEMBER_ROLES,
  type Assignment,
  type AssignmentPage,
  type CreateRoleInput,
  type PageOptions,
  type Role,
  type RolePage,
  type Scope,
} from "./service.js";
export type { RequirePermissionOptions } from "./checks.js";
export type { PermissionCacheOptions } from "./cache.js";
export { createPermissionsRoutes, createMePermissionsRoutes, type PermissionsRoutesOptions } from "./routes.js";

/** What the permissions module needs from the modules created before it. */
export interface PermissionsDependencies {
  audit: AuditModule;
  /** The in-process cache in front of `permission_cache`. */
  cache?: PermissionCacheOptions;
}

export interface PermissionsModuleOptions {
  router: Router;
  audit: AuditModule;
  /** The in-process cache in front of `permission_cache`. */
  cache?: PermissionCacheOptions;
}

/**
 * The permissions module: the one authority for authorization. Tenant-scoped RBAC with role
 * inheritance and wildcards; global assignments apply in every tenant (Casbin's RBAC with domains,
 * with a global domain).
 *
 * @example
 * const permissions = createPermissionsModule({ router, audit });
 * await permissions.assignRole(userId, "admin", { tenant: tenantId });
 * await permissions.can(userId, "roles:write", { tenant: tenantId }); // true
 */
export function createPermissionsModule({ router, audit, cache: cacheOptions }: PermissionsModuleOptions) {
  const cache = createPermissionCache(router, cacheOptions);
  return {
    ...createPermissionsService(router, audit),
    ...createChecks(router, cache),
    /** Seeds the built-in roles (idempotent). */
    seed: () => seedBuiltInRoles(router),
    /** Resolves once the cross-instance invalidation listener is up (until then nothing is cached). */
    ready: () => cache.ready(),
    /** Stops background work (the invalidation listener). */
    stop: () => cache.stop(),
  };
}

export type PermissionsModule = ReturnType<typeof createPermissionsModule>;

/** The permissions module's descriptor. `permission_cache` is derived: a tenant move rebuilds it on the target. */
export const permissionsModule = defineModule({
  name: "permissions",
  schema: "permissions",
  tables: {
    roles: "tenant",
    role_permissions: "tenant",
    role_inheritance: "tenant",
    user_roles: "tenant",
    permission_cache: { kind: "tenant", derived: true },
  },
  crossKeys: [
    { name: "roles_tenant_fk", from: "permissions.roles.tenant_id", to: "auth.organizations.id", onDelete: "cascade" },
    { name: "user_roles_user_fk", from: "permissions.user_roles.user_id", to: "auth.users.id", onDelete: "cascade" },
    { name: "user_roles_tenant_fk", from: "permissions.user_roles.tenant_id", to: "auth.organizations.id", onDelete: "cascade" },
    { name: "user_roles_assigned_by_fk", from: "permissions.user_roles.assigned_by", to: "auth.users.id", onDelete: "set null" },
    { name: "permission_cache_user_fk", from: "permissions.permission_cache.user_id", to: "auth.users.id", onDelete: "cascade" },
    { name: "permission_cache_tenant_fk", from: "permissions.permission_cache.tenant_id", to: "auth.organizations.id", onDelete: "cascade" },
  ],
  create: (context, deps: PermissionsDependencies) => createPermissionsModule({ router: routerOf(context), ...deps }),
});
