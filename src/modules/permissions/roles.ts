/**
 * Role verbs: create, update, delete, read and list roles; grant and revoke their permissions; set
 * their parents (cycles refused, naming the cycle). Each mutation is audited in its savepoint.
 */
import { and, asc, eq, or, sql } from "drizzle-orm";
import { PermissionsErrors } from "./errors.js";
import { rolePermissions, roles } from "./schema.js";
import { type Scope, type Role, type RolePage, type CreateRoleInput, scopeOf, assertPermissions, tenantIs } from "./model.js";
import { decodeCursor, encodeCursor, pageLimit, type PageOptions } from "./page.js";
import type { PermissionsStore } from "./store.js";

/** A roles cursor's key: whether the last role was global, and its name (unique in its scope). */
const isRoleKey = (key: unknown[]): key is [boolean, string] =>
  key.length === 2 && typeof key[0] === "boolean" && typeof key[1] === "string";

export function createRoleVerbs(store: PermissionsStore) {
  const { router, audit, db, change, visibleRoles, findRole, findOwnRole, withGrants, loadRole, insertGrants, replaceParents } = store;
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
    async listRolesPage(options: Scope & PageOptions = {}): Promise<RolePage> {
      const tenant = scopeOf(options);
      const limit = pageLimit(options.limit);
      const after = options.cursor ? decodeCursor(options.cursor, "roles", [tenant], isRoleKey) : undefined;
      const global = sql`(${roles.tenantId} is null)`;
      return router.withTenant(tenant, async () => {
        const rows = await visibleRoles(tenant, after ? sql`(${global}, ${roles.name}) > (${after[0]}::boolean, ${after[1]}::text)` : undefined)
          .orderBy(global, asc(roles.name))
          .limit(limit + 1);
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        const nextCursor = rows.length > limit && last ? encodeCursor("roles", [tenant], [last.tenantId === null, last.name]) : null;
        return { roles: await withGrants(page), nextCursor };
      });
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
