/**
 * The lookups and writes the permissions verbs share: scoped reads of roles, grant and parent
 * writes, assignment rows, and `change` — the savepoint every mutation runs in. Every function takes
 * the module's dependencies first (`PermissionsDeps`), like the verbs.
 */
import { and, asc, eq, inArray, isNull, or, sql, type SQL } from "drizzle-orm";
import type { ModuleContext } from "../../db/module.js";
import { fromDatabaseError } from "../../errors.js";
import type { AuditModule } from "../audit/index.js";
import type { PermissionCache } from "./cache.js";
import { PermissionsErrors } from "./errors.js";
import {
  actorUserId,
  changedUnits,
  MODEL_LOCK,
  rootLevel,
  tenantIs,
  UUID,
  type Assignment,
  type Role,
  type RoleRow,
} from "./model.js";
import { roleInheritance, rolePermissions, roles, userRoles } from "./schema.js";

/** What every permissions verb works with. */
export interface PermissionsDeps {
  context: ModuleContext;
  audit: AuditModule;
  cache: PermissionCache;
}

export type AssignmentRow = typeof userRoles.$inferSelect;

/**
 * Runs a change in a savepoint scoped to `tenant`, marking the unit of work as changed. Its first
 * statement takes the model lock (drizzle/0011: key 0, exclusive, to the end of the transaction), so
 * what the verb reads before writing is current and concurrent changes run one after the other.
 */
export async function change<T>({ context }: PermissionsDeps, tenant: string | null, fn: () => Promise<T>): Promise<T> {
  try {
    // withTenant is a unit level of its own (a savepoint inside an open unit of work).
    return await context.withTenant(tenant, async () => {
      const root = rootLevel();
      if (root) changedUnits.add(root);
      await lockModel(context);
      return fn();
    });
  } catch (error) {
    const mapped = fromDatabaseError(error);
    if ((mapped as { code?: string }).code === "CONFLICT") throw PermissionsErrors.ROLE_NAME_TAKEN();
    throw mapped;
  }
}

/**
 * Takes the model lock where this change writes. For a tenant on a database of its own, the home
 * database's lock is taken first: every unit of work locks the databases in the same order, so two
 * units changing global and moved-tenant rows in opposite orders cannot deadlock across databases
 * (which no database could detect). Where the change writes at home, the second lock is the same
 * session's again (advisory locks nest), so it costs a round trip and nothing else.
 */
async function lockModel(context: ModuleContext): Promise<void> {
  if (!context.spansOneDatabase()) await context.schemaDb().execute(MODEL_LOCK);
  await context.db().execute(MODEL_LOCK);
}

/** Roles visible from `tenant` (the tenant's and the global ones) matching `where`. */
export function visibleRoles({ context }: PermissionsDeps, tenant: string | null, where: SQL | undefined) {
  const scope = tenant === null ? isNull(roles.tenantId) : or(isNull(roles.tenantId), eq(roles.tenantId, tenant));
  return context.db().select().from(roles).where(and(scope, where));
}

/** A role by id or name as seen from `tenant`; a tenant's role shadows a global one of that name. */
export async function findRole(deps: PermissionsDeps, ref: string, tenant: string | null): Promise<RoleRow> {
  const found = await visibleRoles(deps, tenant, UUID.test(ref) ? eq(roles.id, ref) : eq(roles.name, ref));
  const role = found.find((r) => r.tenantId !== null) ?? found[0];
  if (!role) throw PermissionsErrors.ROLE_NOT_FOUND({ role: ref });
  return role;
}

/** A role that may be changed from `tenant`: one of its own, and not built in. */
export async function findOwnRole(deps: PermissionsDeps, ref: string, tenant: string | null): Promise<RoleRow> {
  const role = await findRole(deps, ref, tenant);
  if (role.tenantId !== tenant) throw PermissionsErrors.ROLE_OUT_OF_SCOPE({ role: role.id });
  if (role.builtIn) throw PermissionsErrors.BUILT_IN_ROLE({ role: role.name });
  return role;
}

export async function withGrants({ context }: PermissionsDeps, rows: RoleRow[]): Promise<Role[]> {
  if (rows.length === 0) return [];
  const db = context.db();
  const ids = rows.map((r) => r.id);
  const [grants, parents] = await Promise.all([
    db
      .select()
      .from(rolePermissions)
      .where(inArray(rolePermissions.roleId, ids))
      .orderBy(asc(rolePermissions.permission)),
    db.select().from(roleInheritance).where(inArray(roleInheritance.roleId, ids)),
  ]);
  return rows.map((r) => ({
    ...r,
    permissions: grants.filter((g) => g.roleId === r.id).map((g) => g.permission),
    inherits: parents.filter((p) => p.roleId === r.id).map((p) => p.inheritsRoleId),
  }));
}

export async function loadRole(deps: PermissionsDeps, id: string): Promise<Role> {
  const [row] = await deps.context.db().select().from(roles).where(eq(roles.id, id));
  if (!row) throw PermissionsErrors.ROLE_NOT_FOUND({ role: id });
  return (await withGrants(deps, [row]))[0]!;
}

export async function insertGrants(
  { context }: PermissionsDeps,
  roleId: string,
  permissions: readonly string[],
): Promise<string[]> {
  if (permissions.length === 0) return [];
  const inserted = await context
    .db()
    .insert(rolePermissions)
    .values([...new Set(permissions)].map((permission) => ({ roleId, permission })))
    .onConflictDoNothing()
    .returning({ permission: rolePermissions.permission });
  return inserted.map((r) => r.permission).sort();
}

/** Replaces the parents of `role`, refusing a cycle with the path it would close. */
export async function replaceParents(
  deps: PermissionsDeps,
  role: RoleRow,
  parentRefs: readonly string[],
  tenant: string | null,
): Promise<string[]> {
  const db = deps.context.db();
  const parents = await Promise.all(parentRefs.map((ref) => findRole(deps, ref, tenant)));
  // change() holds the model lock: no concurrent change can close a cycle together with this one.
  await db.delete(roleInheritance).where(eq(roleInheritance.roleId, role.id));
  for (const parent of parents) {
    const path = await pathBetween(deps, parent.id, role.id);
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
async function pathBetween({ context }: PermissionsDeps, from: string, to: string): Promise<string[] | undefined> {
  if (from === to) return [from];
  const rows = await context.db().execute<{ path: string[] }>(sql`
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

export function toAssignment(row: AssignmentRow, roleName: string): Assignment {
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

export async function assignInScope(
  deps: PermissionsDeps,
  userId: string,
  role: RoleRow,
  tenant: string | null,
): Promise<Assignment> {
  const { context, audit } = deps;
  const db = context.db();
  const assignedBy = actorUserId();
  // A tenant in a database of its own: the users the row references must exist there too.
  await context.ensureReferenced("user_roles", { user_id: userId, assigned_by: assignedBy });
  const [inserted] = await db
    .insert(userRoles)
    .values({ userId, roleId: role.id, tenantId: tenant, assignedBy })
    .onConflictDoNothing()
    .returning();
  if (inserted) {
    const after = toAssignment(inserted, role.name);
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

export async function unassignInScope(
  { context, audit }: PermissionsDeps,
  row: AssignmentRow,
  roleName: string,
  why: { reason?: string } = {},
): Promise<void> {
  await context.db().delete(userRoles).where(eq(userRoles.id, row.id));
  await audit.recordAuditEvent({
    action: "role.unassigned",
    target: { type: "user", id: row.userId },
    tenantId: row.tenantId,
    metadata: { roleId: row.roleId, roleName, ...(why.reason ? { reason: why.reason } : {}) },
    changes: { before: toAssignment(row, roleName) },
  });
}

/**
 * A tenant keeps an owner: its last `owner` assignment goes only by a platform administrator (a
 * global `*`) or trusted code (no user actor), never by a tenant admin locking the owner out.
 */
export async function guardLastOwner(
  { context }: PermissionsDeps,
  row: AssignmentRow,
  roleName: string,
): Promise<void> {
  if (roleName !== "owner" || row.tenantId === null) return;
  const db = context.db();
  const [count] = await db.execute<{ owners: number }>(sql`
    select count(*)::int as owners from permissions.user_roles ur
      join permissions.roles r on r.id = ur.role_id and r.tenant_id is null and r.built_in and r.name = 'owner'
     where ur.tenant_id = ${row.tenantId}::uuid`);
  if ((count?.owners ?? 0) > 1) return;
  const actor = actorUserId();
  if (actor === null) return;
  // Global assignments live where the schema does, not in a tenant placed on a database of its own.
  const [held] = await context
    .schemaDb()
    .execute<{ admin: boolean }>(
      sql`select '*' = any(permissions.effective_permissions(${actor}::uuid, null::uuid)) as admin`,
    );
  if (!held?.admin) throw PermissionsErrors.LAST_OWNER({ tenantId: row.tenantId, userId: row.userId });
}
