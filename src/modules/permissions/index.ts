/**
 * The permissions module: the one authority for authorization. Tenant-scoped RBAC with role
 * inheritance and wildcards; global assignments apply in every tenant (Casbin's RBAC with domains,
 * with a global domain).
 *
 * Scope: the verbs take `{ tenant }` — a tenant id, or `"global"` (or null) for the global scope;
 * omitted, the unit of work's tenant (the global scope outside one). Work runs in a unit of work
 * scoped to that tenant, so row-level security is the
 * second wall behind the verbs' explicit filters: inside a tenant only that tenant's roles and the
 * shared global roles are visible, and only the tenant's own rows are writable (0005's policies).
 * Effective permissions (`permission_cache`) are recomputed by database triggers in the same
 * transaction as each change; every change also marks its unit of work so that checks made later in
 * it bypass the in-process cache and see their own writes.
 */
import { defineModule } from "../../db/module.js";
import type { AuditModule } from "../audit/index.js";
import type { PermissionsModule } from "./api.js";
import * as assignmentChanges from "./assignment-changes.js";
import * as assignmentReads from "./assignment-reads.js";
import { createPermissionCache, type PermissionCacheOptions } from "./cache.js";
import * as checks from "./checks.js";
import { requirePermission } from "./guard.js";
import type { PermissionsDeps } from "./internal.js";
import * as roleChanges from "./role-changes.js";
import * as roleReads from "./role-reads.js";
import { seedBuiltInRoles } from "./seed.js";

export { permissionCache, roleInheritance, rolePermissions, roles, userRoles, permissionsSchema } from "./schema.js";
export { BUILT_IN_ROLES, type BuiltInRole } from "./seed.js";
export { PermissionsErrors } from "./errors.js";
export { isValidPermission } from "./matcher.js";
export {
  MEMBER_ROLES,
  type Assignment,
  type AssignmentPage,
  type CreateRoleInput,
  type Role,
  type RolePage,
  type Scope,
} from "./model.js";
export type { PageOptions } from "./page.js";
export type { RequirePermissionOptions } from "./guard.js";
export type { PermissionCacheOptions } from "./cache.js";
export { createPermissionsRoutes, type PermissionsRoutesOptions } from "./routes.js";
export { createMePermissionsRoutes } from "./me-routes.js";
export type { PermissionsModule } from "./api.js";

/** What the permissions module needs from the modules created before it. */
export interface PermissionsDependencies {
  audit: AuditModule;
  /** The in-process cache in front of `permission_cache`. */
  cache?: PermissionCacheOptions;
}

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
    {
      name: "user_roles_tenant_fk",
      from: "permissions.user_roles.tenant_id",
      to: "auth.organizations.id",
      onDelete: "cascade",
    },
    {
      name: "user_roles_assigned_by_fk",
      from: "permissions.user_roles.assigned_by",
      to: "auth.users.id",
      onDelete: "set null",
    },
    {
      name: "permission_cache_user_fk",
      from: "permissions.permission_cache.user_id",
      to: "auth.users.id",
      onDelete: "cascade",
    },
    {
      name: "permission_cache_tenant_fk",
      from: "permissions.permission_cache.tenant_id",
      to: "auth.organizations.id",
      onDelete: "cascade",
    },
  ],
  create: (context, { audit, cache: cacheOptions }: PermissionsDependencies): PermissionsModule => {
    const cache = createPermissionCache(context, cacheOptions);
    const deps: PermissionsDeps = { context, audit, cache };
    return {
      can: (userId, permission, scope) => checks.can(deps, userId, permission, scope),
      checkMany: (userId, permissions, scope) => checks.checkMany(deps, userId, permissions, scope),
      permissionsOf: (userId, scope) => checks.permissionsOf(deps, userId, scope),
      assertHolds: (userId, permissions, scope) => checks.assertHolds(deps, userId, permissions, scope),
      requirePermission: (permission, options) => requirePermission(deps, permission, options),
      createRole: (input, scope) => roleChanges.createRole(deps, input, scope),
      updateRole: (roleRef, patch, scope) => roleChanges.updateRole(deps, roleRef, patch, scope),
      deleteRole: (roleRef, scope) => roleChanges.deleteRole(deps, roleRef, scope),
      grantPermissions: (roleRef, permissions, scope) =>
        roleChanges.grantPermissions(deps, roleRef, permissions, scope),
      revokePermission: (roleRef, permission, scope) => roleChanges.revokePermission(deps, roleRef, permission, scope),
      setRoleParents: (roleRef, parents, scope) => roleChanges.setRoleParents(deps, roleRef, parents, scope),
      getRole: (roleRef, scope) => roleReads.getRole(deps, roleRef, scope),
      listRoles: (scope) => roleReads.listRoles(deps, scope),
      listRolesPage: (options) => roleReads.listRolesPage(deps, options),
      rolePermissionClosure: (roleRefs, scope) => roleReads.rolePermissionClosure(deps, roleRefs, scope),
      assignRole: (userId, roleRef, scope) => assignmentChanges.assignRole(deps, userId, roleRef, scope),
      unassignRole: (userId, roleRef, scope) => assignmentChanges.unassignRole(deps, userId, roleRef, scope),
      removeAssignment: (assignmentId, scope) => assignmentChanges.removeAssignment(deps, assignmentId, scope),
      syncMemberRole: (input) => assignmentChanges.syncMemberRole(deps, input),
      assignDefaultRole: (userId) => assignmentChanges.assignDefaultRole(deps, userId),
      revokeTenantAccess: (input) => assignmentChanges.revokeTenantAccess(deps, input),
      listAssignments: (filter) => assignmentReads.listAssignments(deps, filter),
      listAssignmentsPage: (filter) => assignmentReads.listAssignmentsPage(deps, filter),
      tenantsWithAssignments: (userId) => assignmentReads.tenantsWithAssignments(deps, userId),
      seed: () => seedBuiltInRoles(context),
      ready: () => cache.ready(),
      stop: () => cache.stop(),
    };
  },
});
