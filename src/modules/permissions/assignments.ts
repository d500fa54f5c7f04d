/**
 * Assignment verbs: assign and unassign roles per tenant (or globally), list assignments, mirror
 * organization member roles, and the default role given at sign-up. Each mutation is audited.
 */
import { and, asc, eq, inArray, isNotNull, isNull, or, sql } from "drizzle-orm";
import { PermissionsErrors } from "./errors.js";
import { roles, userRoles } from "./schema.js";
import { UUID, MEMBER_ROLES, type Scope, type Assignment, type AssignmentPage, scopeOf, tenantIs } from "./model.js";
import { decodeCursor, encodeCursor, pageLimit, type PageOptions } from "./page.js";
import type { PermissionsStore } from "./store.js";

/**
 * An assignment's creation time in whole microseconds since the epoch, as text: exactly what
 * PostgreSQL stores (a JavaScript Date keeps milliseconds, and a cursor rounded to them would skip or
 * repeat rows created within one millisecond).
 */
const createdMicros = sql<string>`(extract(epoch from ${userRoles.createdAt}) * 1000000)::bigint::text`;

/** An assignments cursor's key: the last row's creation time (createdMicros) and id. */
const isAssignmentKey = (key: unknown[]): key is [string, string] =>
  key.length === 2 &&
  typeof key[0] === "string" &&
  /^\d{1,16}$/.test(key[0]) &&
  Number.isSafeInteger(Number(key[0])) &&
  typeof key[1] === "string" &&
  UUID.test(key[1]);

export function createAssignmentVerbs(store: PermissionsStore) {
  const { router, db, change, findRole, toAssignment, assignInScope, unassignInScope, guardLastOwner } = store;
  return {
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
        await guardLastOwner(row, role.name);
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
        await guardLastOwner(found.row, found.roleName);
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
    async listAssignmentsPage(filter: Scope & { userId?: string } & PageOptions = {}): Promise<AssignmentPage> {
      const tenant = scopeOf(filter);
      const limit = pageLimit(filter.limit);
      const userId = filter.userId ?? null;
      const after = filter.cursor ? decodeCursor(filter.cursor, "assignments", [tenant, userId], isAssignmentKey) : undefined;
      return router.withTenant(tenant, async () => {
        const rows = await db
          .select({ row: userRoles, roleName: roles.name, createdMicros })
          .from(userRoles)
          .innerJoin(roles, eq(roles.id, userRoles.roleId))
          .where(
            and(
              tenantIs(tenant),
              userId ? eq(userRoles.userId, userId) : undefined,
              after
                ? sql`(${userRoles.createdAt}, ${userRoles.id}) > (timestamptz 'epoch' + ${after[0]}::bigint * interval '1 microsecond', ${after[1]}::uuid)`
                : undefined,
            ),
          )
          .orderBy(asc(userRoles.createdAt), asc(userRoles.id))
          .limit(limit + 1);
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        const nextCursor =
          rows.length > limit && last ? encodeCursor("assignments", [tenant, userId], [last.createdMicros, last.row.id]) : null;
        return { assignments: await Promise.all(page.map((r) => toAssignment(r.row, r.roleName))), nextCursor };
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
     * A user's way out of a tenant (removed, left, the tenant deleted, the user banned or deleted):
     * every assignment the user holds in the tenant goes — the mirrored member role, `auditor`,
     * custom roles alike — each audited as `role.unassigned` with the reason. Returns how many.
     *
     * @example
     * await sdk.permissions.revokeTenantAccess({ userId, tenantId, reason: "member.left" });
     */
    async revokeTenantAccess(input: { userId: string; tenantId: string; reason: string }): Promise<number> {
      const tenant = scopeOf({ tenant: input.tenantId });
      return change(tenant, async () => {
        const held = await db
          .select({ row: userRoles, roleName: roles.name })
          .from(userRoles)
          .innerJoin(roles, eq(roles.id, userRoles.roleId))
          .where(and(eq(userRoles.userId, input.userId), tenantIs(tenant)));
        for (const { row, roleName } of held) await unassignInScope(row, roleName, { reason: input.reason });
        return held.length;
      });
    },

    /**
     * The tenants in which a user holds any assignment (for revoking all of them at once: a ban).
     *
     * @example
     * for (const tenantId of await sdk.permissions.tenantsWithAssignments(userId)) { ... }
     */
    async tenantsWithAssignments(userId: string): Promise<string[]> {
      return router.withTenant("*", async () => {
        const rows = await db
          .selectDistinct({ tenantId: userRoles.tenantId })
          .from(userRoles)
          .where(and(eq(userRoles.userId, userId), isNotNull(userRoles.tenantId)));
        return rows.map((r) => r.tenantId!);
      });
    },

  };
}
