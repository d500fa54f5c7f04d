/**
 * What `sdk.permissions` offers: the module's declared interface (its index exports it). Kept apart
 * from the index so the module's HTTP files can name it without importing their own face.
 */
import type { RequirePermission } from "./guard.js";
import type { Assignment, AssignmentPage, CreateRoleInput, Role, RolePage, Scope } from "./model.js";
import type { PageOptions } from "./page.js";

/**
 * `sdk.permissions`.
 *
 * @example
 * await sdk.permissions.assignRole(userId, "admin", { tenant: tenantId });
 * await sdk.permissions.can(userId, "roles:write", { tenant: tenantId }); // true
 */
export interface PermissionsModule {
  /**
   * Whether a user holds a permission in a tenant (global assignments count in every tenant) or
   * globally (`{ tenant: "global" }`, or no tenant).
   *
   * @example
   * if (await sdk.permissions.can(userId, "invoices:write", { tenant: tenantId })) { ... }
   */
  can(userId: string, permission: string, scope?: Scope): Promise<boolean>;
  /**
   * Checks several permissions of one user at once (one lookup), answering each.
   *
   * @example
   * const results = await sdk.permissions.checkMany(userId, ["audit:read", "roles:write"], { tenant });
   */
  checkMany(userId: string, permissions: readonly string[], scope?: Scope): Promise<Record<string, boolean>>;
  /**
   * The effective permissions of a user in a tenant (or globally), wildcards as granted.
   *
   * @example
   * const permissions = await sdk.permissions.permissionsOf(userId, { tenant: tenantId });
   */
  permissionsOf(userId: string, scope?: Scope): Promise<string[]>;
  /**
   * Refuses with PERMISSION_DENIED (naming the first missing permission) unless the user holds all
   * of `permissions`. Used before handing permissions out, so nobody grants more than they hold.
   *
   * @example
   * await sdk.permissions.assertHolds(actorId, ["audit:read"], { tenant });
   */
  assertHolds(userId: string, permissions: readonly string[], scope?: Scope): Promise<void>;
  /**
   * Hono middleware: 401 problem+json without a signed-in user, 403 (`code: "PERMISSION_DENIED"`,
   * `permission`) when the user lacks the permission in the request's tenant (or, with
   * `{ tenant: "global" }`, globally). Its errors are answered by the app's error handler
   * (`createApp`), like every route's.
   *
   * @example
   * app.get("/invoices", sdk.permissions.requirePermission("invoices:read"), (c) => ...);
   */
  requirePermission: RequirePermission;

  /**
   * Creates a role in a scope (global when `tenant` is `"global"` or omitted), with its grants and parents.
   *
   * @example
   * const role = await sdk.permissions.createRole(
   *   { name: "billing", permissions: ["invoices:*"], inherits: ["member"] },
   *   { tenant: tenantId },
   * );
   */
  createRole(input: CreateRoleInput, scope?: Scope): Promise<Role>;
  /**
   * Renames a role or changes its description.
   *
   * @example
   * await sdk.permissions.updateRole(roleId, { description: "Billing staff" }, { tenant });
   */
  updateRole(roleRef: string, patch: { name?: string; description?: string | null }, scope?: Scope): Promise<Role>;
  /**
   * Deletes a role; its grants, inheritance links and assignments go with it.
   *
   * @example
   * await sdk.permissions.deleteRole(roleId, { tenant });
   */
  deleteRole(roleRef: string, scope?: Scope): Promise<void>;
  /**
   * One role as seen from a scope (its own or a global one).
   *
   * @example
   * const role = await sdk.permissions.getRole("auditor");
   */
  getRole(roleRef: string, scope?: Scope): Promise<Role>;
  /**
   * The roles visible from a scope: the global roles, plus the tenant's own inside a tenant.
   *
   * @example
   * const roles = await sdk.permissions.listRoles({ tenant: tenantId });
   */
  listRoles(scope?: Scope): Promise<Role[]>;
  /**
   * One page of the roles visible from a scope, in `listRoles`' order: the tenant's own, then the
   * global ones, each by name. Pass `nextCursor` back as `cursor` for the next page; a cursor is
   * only accepted in the scope that issued it (INVALID_CURSOR otherwise).
   *
   * @example
   * let page = await sdk.permissions.listRolesPage({ tenant: tenantId, limit: 100 });
   * while (page.nextCursor) {
   *   page = await sdk.permissions.listRolesPage({ tenant: tenantId, limit: 100, cursor: page.nextCursor });
   * }
   */
  listRolesPage(options?: Scope & PageOptions): Promise<RolePage>;
  /**
   * Grants permissions to a role of the scope; already granted ones are left as they are.
   *
   * @example
   * await sdk.permissions.grantPermissions(roleId, ["audit:read", "email:*"], { tenant });
   */
  grantPermissions(roleRef: string, permissions: string[], scope?: Scope): Promise<Role>;
  /**
   * Revokes one permission from a role of the scope.
   *
   * @example
   * await sdk.permissions.revokePermission(roleId, "audit:read", { tenant });
   */
  revokePermission(roleRef: string, permission: string, scope?: Scope): Promise<Role>;
  /**
   * Replaces the roles a role inherits from. A cycle is refused with INHERITANCE_CYCLE naming it.
   *
   * @example
   * await sdk.permissions.setRoleParents("billing-admin", ["billing", "member"], { tenant });
   */
  setRoleParents(roleRef: string, parents: string[], scope?: Scope): Promise<Role>;
  /**
   * Every permission a set of roles grants, parents included (what assigning them hands out).
   *
   * @example
   * const granted = await sdk.permissions.rolePermissionClosure(["admin"], { tenant });
   */
  rolePermissionClosure(roleRefs: string[], scope?: Scope): Promise<string[]>;

  /**
   * Assigns a role (id or name; the tenant's role or a global one) to a user in a scope. A global
   * assignment is effective in every tenant. Idempotent: an existing assignment is returned
   * unchanged and not audited again.
   *
   * @example
   * await sdk.permissions.assignRole(userId, "admin", { tenant: tenantId });
   */
  assignRole(userId: string, roleRef: string, scope?: Scope): Promise<Assignment>;
  /**
   * Removes a user's assignment of a role in a scope.
   *
   * @example
   * await sdk.permissions.unassignRole(userId, "admin", { tenant: tenantId });
   */
  unassignRole(userId: string, roleRef: string, scope?: Scope): Promise<void>;
  /**
   * Removes an assignment by id; it must belong to the scope (a global one only from the global scope).
   *
   * @example
   * await sdk.permissions.removeAssignment(assignmentId, { tenant });
   */
  removeAssignment(assignmentId: string, scope?: Scope): Promise<void>;
  /**
   * Assignments made in one scope (a tenant's, or the global ones), optionally of one user.
   *
   * @example
   * const assignments = await sdk.permissions.listAssignments({ tenant: tenantId, userId });
   */
  listAssignments(filter?: Scope & { userId?: string }): Promise<Assignment[]>;
  /**
   * One page of the assignments made in a scope (optionally of one user), in `listAssignments`'
   * order: oldest first. Pass `nextCursor` back as `cursor` for the next page; a cursor is only
   * accepted with the scope and `userId` that issued it (INVALID_CURSOR otherwise).
   *
   * @example
   * const first = await sdk.permissions.listAssignmentsPage({ tenant: tenantId, limit: 100 });
   * const second = first.nextCursor
   *   ? await sdk.permissions.listAssignmentsPage({ tenant: tenantId, limit: 100, cursor: first.nextCursor })
   *   : undefined;
   */
  listAssignmentsPage(filter?: Scope & { userId?: string } & PageOptions): Promise<AssignmentPage>;
  /**
   * Mirrors an organization member's role into the tenant-scoped assignment of the built-in role of
   * the same name (`owner`, `admin`, `member`; better-auth's comma-separated multiple roles too).
   * `role: null` means the member was removed: their built-in member-role assignments in the tenant
   * go. Other assignments (custom roles, `auditor`) are left alone. Called by auth in the same
   * transaction as the membership change.
   *
   * @example
   * await sdk.permissions.syncMemberRole({ userId, tenantId: organizationId, role: "admin" });
   */
  syncMemberRole(input: { userId: string; tenantId: string; role: string | null }): Promise<void>;
  /**
   * The role every new user gets at sign-up: the global built-in `member`, which only lets a user
   * read and check their own permissions (`permissions:read:self`) — it grants nothing inside any
   * tenant. Tenant rights come from organization membership (syncMemberRole) or explicit assignments.
   * Writes `role.assigned` in the caller's transaction.
   *
   * @example
   * await sdk.transaction(async () => {
   *   const user = await createUser(...);
   *   await sdk.permissions.assignDefaultRole(user.id);
   * });
   */
  assignDefaultRole(userId: string): Promise<Assignment>;
  /**
   * A user's way out of a tenant (removed, left, the tenant deleted, the user banned or deleted):
   * every assignment the user holds in the tenant goes — the mirrored member role, `auditor`,
   * custom roles alike — each audited as `role.unassigned` with the reason. Returns how many.
   *
   * @example
   * await sdk.permissions.revokeTenantAccess({ userId, tenantId, reason: "member.left" });
   */
  revokeTenantAccess(input: { userId: string; tenantId: string; reason: string }): Promise<number>;
  /**
   * The tenants in which a user holds any assignment (for revoking all of them at once: a ban).
   *
   * @example
   * for (const tenantId of await sdk.permissions.tenantsWithAssignments(userId)) { ... }
   */
  tenantsWithAssignments(userId: string): Promise<string[]>;

  /** Seeds the built-in roles (idempotent). */
  seed(): Promise<void>;
  /** Resolves once the cross-instance invalidation listener is up (until then nothing is cached). */
  ready(): Promise<void>;
  /** Stops background work (the invalidation listener). */
  stop(): Promise<void>;
}
