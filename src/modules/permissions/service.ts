/**
 * The permissions verbs that change the model: roles, their grants and parents, and assignments.
 *
 * Scope: every verb takes `{ tenant }` — a tenant id, or null/omitted for the global scope. Work runs
 * under `router.withTenant(tenant)`, so row-level security is the second wall behind the explicit
 * filters here: inside a tenant only that tenant's roles and the shared global roles are visible, and
 * only the tenant's own rows are writable (0005's restrictive policies).
 *
 * Effective permissions (`permission_cache`) are recomputed by database triggers in the same
 * transaction as each change; every mutation also marks its unit of work so that checks made later in
 * it bypass the in-process cache and see their own writes.
 */
import { and, asc, eq, inArray, isNull, or, sql, type SQL } from "drizzle-orm";
import type { Router } from "../../db/router.js";
import { currentContext, currentLevel, type UnitLevel } from "../../db/unit-of-work.js";
import { fromDatabaseError } from "../../errors.js";
import type { AuditModule } from "../audit/index.js";
import { PermissionsErrors } from "./errors.js";
import { isValidPermission } from "./matcher.js";
import type { AnyPgColumn } from "drizzle-orm/pg-core";
import { roleInheritance, rolePermissions, roles, userRoles } from "./schema.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** The organization member roles mirrored into tenant-scoped assignments of the same built-in roles. */
export const MEMBER_ROLES = ["owner", "admin", "member"] as const;
/** The advisory lock class shared with 0005's triggers; key 0 serializes role-level changes. */
const LOCK_CLASS = 1936683632;

export interface Scope {
  /** A tenant id, or null/omitted for the global scope. */
  tenant?: string | null;
}

export interface Role {
  id: string;
  tenantId: string | null;
  name: string;
  description: string | null;
  builtIn: boolean;
  /** Permissions granted directly (not through parents). */
  permissions: string[];
  /** Ids of the roles this one inherits from. */
  inherits: string[];
  createdAt: Date;
  updatedAt: Date;
}

export interface Assignment {
  id: string;
  userId: string;
  roleId: string;
  roleName: string;
  /** null: a global assignment, effective in every tenant. */
  tenantId: string | null;
  assignedBy: string | null;
  createdAt: Date;
}

export interface CreateRoleInput {
  name: string;
  description?: string | null;
  permissions?: string[];
  /** Role ids or names (global or of the same tenant) to inherit from. */
  inherits?: string[];
}

type RoleRow = typeof roles.$inferSelect;

/** Units of work (their outermost level) that changed permissions: their checks bypass the cache. */
const changedUnits = new WeakSet<UnitLevel>();

function rootLevel(): UnitLevel | undefined {
  let level = currentLevel();
  while (level?.parent) level = level.parent;
  return level;
}

/** True inside a unit of work that changed permissions: checks must read its own writes. */
export function inChangedUnit(): boolean {
  const root = rootLevel();
  return root !== undefined && changedUnits.has(root);
}

export function scopeOf(scope: Scope | undefined): string | null {
  const tenant = scope?.tenant ?? null;
  if (tenant !== null && !UUID.test(tenant)) throw PermissionsErrors.INVALID_TENANT({ tenant });
  return tenant;
}

export function assertPermissions(permissions: readonly string[]): void {
  const invalid = permissions.filter((p) => !isValidPermission(p));
  if (invalid.length > 0) throw PermissionsErrors.INVALID_PERMISSION({ invalid });
}

function actorUserId(): string | null {
  const actor = currentContext().actor;
  return actor?.type === "user" ? actor.id : null;
}

export function createPermissionsService(router: Router, audit: AuditModule) {
  const db = router.db("permissions");

  /** Runs a change in a savepoint scoped to `tenant`, marking the unit of work as changed. */
  async function change<T>(tenant: string | null, fn: () => Promise<T>): Promise<T> {
    try {
      // withTenant is a unit level of its own (a savepoint inside an open unit of work).
      return await router.withTenant(tenant, async () => {
        const root = rootLevel();
        if (root) changedUnits.add(root);
        return fn();
      });
    } catch (error) {
      const mapped = fromDatabaseError(error);
      if ((mapped as { code?: string }).code === "CONFLICT") throw PermissionsErrors.ROLE_NAME_TAKEN();
      throw mapped;
    }
  }

  /** Roles visible from `tenant` (the tenant's and the global ones) matching `where`. */
  function visibleRoles(tenant: string | null, where: SQL | undefined) {
    const scope = tenant === null ? isNull(roles.tenantId) : or(isNull(roles.tenantId), eq(roles.tenantId, tenant));
    return db.select().from(roles).where(and(scope, where));
  }

  /** A role by id or name as seen from `tenant`; a tenant's role shadows a global one of that name. */
  async function findRole(ref: string, tenant: string | null): Promise<RoleRow> {
    const found = await visibleRoles(tenant, UUID.test(ref) ? eq(roles.id, ref) : eq(roles.name, ref));
    const role = found.find((r) => r.tenantId !== null) ?? found[0];
    if (!role) throw PermissionsErrors.ROLE_NOT_FOUND({ role: ref });
    return role;
  }

  /** A role that may be changed from `tenant`: one of its own, and not built in. */
  async function findOwnRole(ref: string, tenant: string | null): Promise<RoleRow> {
    const role = await findRole(ref, tenant);
    if (role.tenantId !== tenant) throw PermissionsErrors.ROLE_OUT_OF_SCOPE({ role: role.id });
    if (role.builtIn) throw PermissionsErrors.BUILT_IN_ROLE({ role: role.name });
    return role;
  }

  async function withGrants(rows: RoleRow[]): Promise<Role[]> {
    if (rows.length === 0) return [];
    const ids = rows.map((r) => r.id);
    const [grants, parents] = await Promise.all([
      db.select().from(rolePermissions).where(inArray(rolePermissions.roleId, ids)).orderBy(asc(rolePermissions.permission)),
      db.select().from(roleInheritance).where(inArray(roleInheritance.roleId, ids)),
    ]);
    return rows.map((r) => ({
      ...r,
      permissions: grants.filter((g) => g.roleId === r.id).map((g) => g.permission),
      inherits: parents.filter((p) => p.roleId === r.id).map((p) => p.inheritsRoleId),
    }));
  }

  async function loadRole(id: string): Promise<Role> {
    const [row] = await db.select().from(roles).where(eq(roles.id, id));
    if (!row) throw PermissionsErrors.ROLE_NOT_FOUND({ role: id });
    return (await withGrants([row]))[0]!;
  }

  async function insertGrants(roleId: string, permissions: readonly string[]): Promise<string[]> {
    if (permissions.length === 0) return [];
    const inserted = await db
      .insert(rolePermissions)
      .values([...new Set(permissions)].map((permission) => ({ roleId, permission })))
      .onConflictDoNothing()
      .returning({ permission: rolePermissions.permission });
    return inserted.map((r) => r.permission).sort();
  }

  /** Replaces the parents of `role`, refusing a cycle with the path it would close. */
  async function replaceParents(role: RoleRow, parentRefs: readonly string[], tenant: string | null): Promise<string[]> {
    const parents = await Promise.all(parentRefs.map((ref) => findRole(ref, tenant)));
    // Serializes inheritance changes, so two concurrent ones cannot close a cycle together.
    await db.execute(sql`select pg_advisory_xact_lock(${LOCK_CLASS}::int, 0)`);
    await db.delete(roleInheritance).where(eq(roleInheritance.roleId, role.id));
    for (const parent of parents) {
      const path = await pathBetween(parent.id, role.id);
      if (path) {
        const named = await db.select({ id: roles.id, name: roles.name }).from(roles).where(inArray(roles.id, path));
        const names = [role.id, ...path].map((id) => named.find((n) => n.id === id)?.name ?? id);
        throw PermissionsErrors.INHERITANCE_CYCLE(
          { cycle: names },
          `Role '${role.name}' cannot inherit from '${parent.name}': ${names.join(" -> ")} would be a cycle`,
        );
      }
    }
    const ids = [...new Set(parents.map((p) => p.id))];
    if (ids.length > 0) {
      await db.insert(roleInheritance).values(ids.map((inheritsRoleId) => ({ roleId: role.id, inheritsRoleId })));
    }
    return ids;
  }

  /** The inheritance path from `from` up to `to` (both included), if `to` is an ancestor of `from`. */
  async function pathBetween(from: string, to: string): Promise<string[] | undefined> {
    if (from === to) return [from];
    const rows = await db.execute<{ path: string[] }>(sql`
      with recursive walk(role_id, path) as (
        select ${from}::uuid, array[${from}::uuid]
        union all
        select ri.inherits_role_id, w.path || ri.inherits_role_id
          from permissions.role_inheritance ri join walk w on ri.role_id = w.role_id
         where not ri.inherits_role_id = any(w.path)
      )
      select path::text[] as path from walk where role_id = ${to}::uuid limit 1`);
    return rows[0]?.path;
  }

  async function toAssignment(row: typeof userRoles.$inferSelect, roleName: string): Promise<Assignment> {
    return {
      id: row.id,
      userId: row.userId,
      roleId: row.roleId,
      roleName,
      tenantId: row.tenantId,
      assignedBy: row.assignedBy,
      createdAt: row.createdAt,
    };
  }

  async function assignInScope(userId: string, role: RoleRow, tenant: string | null): Promise<Assignment> {
    const [inserted] = await db
      .insert(userRoles)
      .values({ userId, roleId: role.id, tenantId: tenant, assignedBy: actorUserId() })
      .onConflictDoNothing()
      .returning();
    if (inserted) {
      const after = await toAssignment(inserted, role.name);
      await audit.recordAuditEvent({
        action: "role.assigned",
        target: { type: "user", id: userId },
        tenantId: tenant,
        metadata: { roleId: role.id, roleName: role.name },
        changes: { after },
      });
      return after;
    }
    const [existing] = await db
      .select()
      .from(userRoles)
      .where(and(eq(userRoles.userId, userId), eq(userRoles.roleId, role.id), tenantIs(tenant)));
    return toAssignment(existing!, role.name);
  }

  async function unassignInScope(row: typeof userRoles.$inferSelect, roleName: string): Promise<void> {
    await db.delete(userRoles).where(eq(userRoles.id, row.id));
    await audit.recordAuditEvent({
      action: "role.unassigned",
      target: { type: "user", id: row.userId },
      tenantId: row.tenantId,
      metadata: { roleId: row.roleId, roleName },
      changes: { before: await toAssignment(row, roleName) },
    });
  }

  return {
    /**
     * Creates a role in a scope (global when `tenant` is omitted), with its grants and parents.
     *
     * @example
     * const role = await sdk.permissions.createRole(
     *   { name: "billing", permissions: ["invoices:*"], inherits: ["member"] },
     *   { tenant: tenantId },
     * );
     */
    async createRole(input: CreateRoleInput, scope?: Scope): Promise<Role> {
      const tenant = scopeOf(scope);
      assertPermissions(input.permissions ?? []);
      return change(tenant, async () => {
        const [existing] = await db
          .select({ id: roles.id })
          .from(roles)
          .where(and(tenantIs(tenant, roles.tenantId), eq(roles.name, input.name)));
        if (existing) throw PermissionsErrors.ROLE_NAME_TAKEN({ name: input.name });
        const [row] = await db
          .insert(roles)
          .values({ tenantId: tenant, name: input.name, description: input.description ?? null })
          .returning();
        await insertGrants(row!.id, input.permissions ?? []);
        await replaceParents(row!, input.inherits ?? [], tenant);
        const created = await loadRole(row!.id);
        await audit.recordAuditEvent({
          action: "role.created",
          target: { type: "role", id: created.id },
          tenantId: tenant,
          changes: { after: created },
        });
        return created;
      });
    },

    /**
     * Renames a role or changes its description.
     *
     * @example
     * await sdk.permissions.updateRole(roleId, { description: "Billing staff" }, { tenant });
     */
    async updateRole(roleRef: string, patch: { name?: string; description?: string | null }, scope?: Scope): Promise<Role> {
      const tenant = scopeOf(scope);
      return change(tenant, async () => {
        const role = await findOwnRole(roleRef, tenant);
        const before = await loadRole(role.id);
        await db
          .update(roles)
          .set({
            ...(patch.name !== undefined ? { name: patch.name } : {}),
            ...(patch.description !== undefined ? { description: patch.description } : {}),
            updatedAt: new Date(),
          })
          .where(eq(roles.id, role.id));
        const after = await loadRole(role.id);
        await audit.recordAuditEvent({
          action: "role.updated",
          target: { type: "role", id: role.id },
          tenantId: tenant,
          changes: { before, after },
        });
        return after;
      });
    },

    /**
     * Deletes a role; its grants, inheritance links and assignments go with it.
     *
     * @example
     * await sdk.permissions.deleteRole(roleId, { tenant });
     */
    async deleteRole(roleRef: string, scope?: Scope): Promise<void> {
      const tenant = scopeOf(scope);
      await change(tenant, async () => {
        const role = await findOwnRole(roleRef, tenant);
        const before = await loadRole(role.id);
        await db.delete(roles).where(eq(roles.id, role.id));
        await audit.recordAuditEvent({
          action: "role.deleted",
          target: { type: "role", id: role.id },
          tenantId: tenant,
          changes: { before },
        });
      });
    },

    /**
     * One role as seen from a scope (its own or a global one).
     *
     * @example
     * const role = await sdk.permissions.getRole("auditor");
     */
    async getRole(roleRef: string, scope?: Scope): Promise<Role> {
      const tenant = scopeOf(scope);
      return router.withTenant(tenant, async () => loadRole((await findRole(roleRef, tenant)).id));
    },

    /**
     * The roles visible from a scope: the global roles, plus the tenant's own inside a tenant.
     *
     * @example
     * const roles = await sdk.permissions.listRoles({ tenant: tenantId });
     */
    async listRoles(scope?: Scope): Promise<Role[]> {
      const tenant = scopeOf(scope);
      return router.withTenant(tenant, async () =>
        withGrants(await visibleRoles(tenant, undefined).orderBy(asc(roles.tenantId), asc(roles.name))),
      );
    },

    /**
     * Grants permissions to a role of the scope; already granted ones are left as they are.
     *
     * @example
     * await sdk.permissions.grantPermissions(roleId, ["audit:read", "email:*"], { tenant });
     */
    async grantPermissions(roleRef: string, permissions: string[], scope?: Scope): Promise<Role> {
      const tenant = scopeOf(scope);
      assertPermissions(permissions);
      return change(tenant, async () => {
        const role = await findOwnRole(roleRef, tenant);
        const before = await loadRole(role.id);
        const granted = await insertGrants(role.id, permissions);
        const after = await loadRole(role.id);
        if (granted.length > 0) {
          await audit.recordAuditEvent({
            action: "role.permissions_granted",
            target: { type: "role", id: role.id },
            tenantId: tenant,
            metadata: { granted },
            changes: { before: { permissions: before.permissions }, after: { permissions: after.permissions } },
          });
        }
        return after;
      });
    },

    /**
     * Revokes one permission from a role of the scope.
     *
     * @example
     * await sdk.permissions.revokePermission(roleId, "audit:read", { tenant });
     */
    async revokePermission(roleRef: string, permission: string, scope?: Scope): Promise<Role> {
      const tenant = scopeOf(scope);
      return change(tenant, async () => {
        const role = await findOwnRole(roleRef, tenant);
        const before = await loadRole(role.id);
        const removed = await db
          .delete(rolePermissions)
          .where(and(eq(rolePermissions.roleId, role.id), eq(rolePermissions.permission, permission)))
          .returning();
        if (removed.length === 0) {
          throw PermissionsErrors.ROLE_NOT_FOUND({ role: role.id, permission }, `Role '${role.name}' does not grant '${permission}'`);
        }
        const after = await loadRole(role.id);
        await audit.recordAuditEvent({
          action: "role.permission_revoked",
          target: { type: "role", id: role.id },
          tenantId: tenant,
          metadata: { revoked: permission },
          changes: { before: { permissions: before.permissions }, after: { permissions: after.permissions } },
        });
        return after;
      });
    },

    /**
     * Replaces the roles a role inherits from. A cycle is refused with INHERITANCE_CYCLE naming it.
     *
     * @example
     * await sdk.permissions.setRoleParents("billing-admin", ["billing", "member"], { tenant });
     */
    async setRoleParents(roleRef: string, parents: string[], scope?: Scope): Promise<Role> {
      const tenant = scopeOf(scope);
      return change(tenant, async () => {
        const role = await findOwnRole(roleRef, tenant);
        const before = await loadRole(role.id);
        await replaceParents(role, parents, tenant);
        const after = await loadRole(role.id);
        await audit.recordAuditEvent({
          action: "role.parents_changed",
          target: { type: "role", id: role.id },
          tenantId: tenant,
          changes: { before: { inherits: before.inherits }, after: { inherits: after.inherits } },
        });
        return after;
      });
    },

    /**
     * Assigns a role (id or name; the tenant's role or a global one) to a user in a scope. A global
     * assignment (no tenant) is effective in every tenant. Idempotent: an existing assignment is
     * returned unchanged and not audited again.
     *
     * @example
     * await sdk.permissions.assignRole(userId, "admin", { tenant: tenantId });
     */
    async assignRole(userId: string, roleRef: string, scope?: Scope): Promise<Assignment> {
      const tenant = scopeOf(scope);
      return change(tenant, async () => assignInScope(userId, await findRole(roleRef, tenant), tenant));
    },

    /**
     * Removes a user's assignment of a role in a scope.
     *
     * @example
     * await sdk.permissions.unassignRole(userId, "admin", { tenant: tenantId });
     */
    async unassignRole(userId: string, roleRef: string, scope?: Scope): Promise<void> {
      const tenant = scopeOf(scope);
      await change(tenant, async () => {
        const role = await findRole(roleRef, tenant);
        const [row] = await db
          .select()
          .from(userRoles)
          .where(and(eq(userRoles.userId, userId), eq(userRoles.roleId, role.id), tenantIs(tenant)));
        if (!row) throw PermissionsErrors.ASSIGNMENT_NOT_FOUND({ userId, role: role.name });
        await unassignInScope(row, role.name);
      });
    },

    /**
     * Removes an assignment by id; it must belong to the scope (a global one only from the global scope).
     *
     * @example
     * await sdk.permissions.removeAssignment(assignmentId, { tenant });
     */
    async removeAssignment(assignmentId: string, scope?: Scope): Promise<void> {
      const tenant = scopeOf(scope);
      if (!UUID.test(assignmentId)) throw PermissionsErrors.ASSIGNMENT_NOT_FOUND({ assignmentId });
      await change(tenant, async () => {
        const [found] = await db
          .select({ row: userRoles, roleName: roles.name })
          .from(userRoles)
          .innerJoin(roles, eq(roles.id, userRoles.roleId))
          .where(eq(userRoles.id, assignmentId));
        if (!found) throw PermissionsErrors.ASSIGNMENT_NOT_FOUND({ assignmentId });
        if (found.row.tenantId !== tenant) throw PermissionsErrors.ROLE_OUT_OF_SCOPE({ assignmentId });
        await unassignInScope(found.row, found.roleName);
      });
    },

    /**
     * Assignments made in one scope (a tenant's, or the global ones), optionally of one user.
     *
     * @example
     * const assignments = await sdk.permissions.listAssignments({ tenant: tenantId, userId });
     */
    async listAssignments(filter: Scope & { userId?: string } = {}): Promise<Assignment[]> {
      const tenant = scopeOf(filter);
      return router.withTenant(tenant, async () => {
        const rows = await db
          .select({ row: userRoles, roleName: roles.name })
          .from(userRoles)
          .innerJoin(roles, eq(roles.id, userRoles.roleId))
          .where(and(tenantIs(tenant), filter.userId ? eq(userRoles.userId, filter.userId) : undefined))
          .orderBy(asc(userRoles.createdAt), asc(userRoles.id));
        return Promise.all(rows.map((r) => toAssignment(r.row, r.roleName)));
      });
    },

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
    async syncMemberRole(input: { userId: string; tenantId: string; role: string | null }): Promise<void> {
      const tenant = scopeOf({ tenant: input.tenantId });
      const wanted = (input.role ?? "")
        .split(",")
        .map((r) => r.trim())
        .filter((r) => r.length > 0);
      const unknown = wanted.filter((r) => !(MEMBER_ROLES as readonly string[]).includes(r));
      if (unknown.length > 0) throw PermissionsErrors.UNKNOWN_MEMBER_ROLE({ roles: unknown });
      await change(tenant, async () => {
        const builtIns = await db
          .select()
          .from(roles)
          .where(and(isNull(roles.tenantId), eq(roles.builtIn, true), inArray(roles.name, [...MEMBER_ROLES])));
        const current = await db
          .select()
          .from(userRoles)
          .where(
            and(
              eq(userRoles.userId, input.userId),
              tenantIs(tenant),
              inArray(
                userRoles.roleId,
                builtIns.map((r) => r.id),
              ),
            ),
          );
        for (const row of current) {
          const role = builtIns.find((r) => r.id === row.roleId)!;
          if (!wanted.includes(role.name)) await unassignInScope(row, role.name);
        }
        for (const name of wanted) {
          const role = builtIns.find((r) => r.name === name);
          if (!role) throw PermissionsErrors.ROLE_NOT_FOUND({ role: name }, `Built-in role '${name}' is missing: run seed()`);
          if (!current.some((row) => row.roleId === role.id)) await assignInScope(input.userId, role, tenant);
        }
      });
    },

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
    async assignDefaultRole(userId: string): Promise<Assignment> {
      return change(null, async () => assignInScope(userId, await findRole("member", null), null));
    },

    /**
     * Every permission a set of roles grants, parents included (what assigning them hands out).
     *
     * @example
     * const granted = await sdk.permissions.rolePermissionClosure(["admin"], { tenant });
     */
    async rolePermissionClosure(roleRefs: string[], scope?: Scope): Promise<string[]> {
      const tenant = scopeOf(scope);
      return router.withTenant(tenant, async () => {
        const ids = (await Promise.all(roleRefs.map((ref) => findRole(ref, tenant)))).map((r) => r.id);
        if (ids.length === 0) return [];
        const rows = await db.execute<{ permission: string }>(sql`
          with recursive held(role_id) as (
            select unnest(string_to_array(${ids.join(",")}, ',')::uuid[])
            union
            select ri.inherits_role_id from permissions.role_inheritance ri join held h on ri.role_id = h.role_id
          )
          select distinct rp.permission from held h join permissions.role_permissions rp on rp.role_id = h.role_id
          order by 1`);
        return rows.map((r) => r.permission);
      });
    },
  };
}

function tenantIs(tenant: string | null, column: AnyPgColumn = userRoles.tenantId) {
  return tenant === null ? isNull(column) : eq(column, tenant);
}

export type PermissionsService = ReturnType<typeof createPermissionsService>;
