/**
 * Assignment changes: assign and unassign roles per tenant (or globally), mirror organization member
 * roles, the default role given at sign-up, and a user's way out of a tenant. Each is audited.
 */
import { and, eq, inArray, isNull } from "drizzle-orm";
import { PermissionsErrors } from "./errors.js";
import { assignInScope, change, findRole, guardLastOwner, unassignInScope, type PermissionsDeps } from "./internal.js";
import { MEMBER_ROLES, scopeOf, tenantIs, UUID, type Assignment, type Scope } from "./model.js";
import { roles, userRoles } from "./schema.js";

export async function assignRole(
  deps: PermissionsDeps,
  userId: string,
  roleRef: string,
  scope?: Scope,
): Promise<Assignment> {
  const tenant = scopeOf(scope);
  return change(deps, tenant, async () => assignInScope(deps, userId, await findRole(deps, roleRef, tenant), tenant));
}

export async function unassignRole(
  deps: PermissionsDeps,
  userId: string,
  roleRef: string,
  scope?: Scope,
): Promise<void> {
  const tenant = scopeOf(scope);
  await change(deps, tenant, async () => {
    const role = await findRole(deps, roleRef, tenant);
    const [row] = await deps.context
      .db()
      .select()
      .from(userRoles)
      .where(and(eq(userRoles.userId, userId), eq(userRoles.roleId, role.id), tenantIs(tenant)));
    if (!row) throw PermissionsErrors.ASSIGNMENT_NOT_FOUND({ userId, role: role.name });
    await guardLastOwner(deps, row, role.name);
    await unassignInScope(deps, row, role.name);
  });
}

export async function removeAssignment(deps: PermissionsDeps, assignmentId: string, scope?: Scope): Promise<void> {
  const tenant = scopeOf(scope);
  if (!UUID.test(assignmentId)) throw PermissionsErrors.ASSIGNMENT_NOT_FOUND({ assignmentId });
  await change(deps, tenant, async () => {
    const [found] = await deps.context
      .db()
      .select({ row: userRoles, roleName: roles.name })
      .from(userRoles)
      .innerJoin(roles, eq(roles.id, userRoles.roleId))
      .where(eq(userRoles.id, assignmentId));
    if (!found) throw PermissionsErrors.ASSIGNMENT_NOT_FOUND({ assignmentId });
    if (found.row.tenantId !== tenant) throw PermissionsErrors.ROLE_OUT_OF_SCOPE({ assignmentId });
    await guardLastOwner(deps, found.row, found.roleName);
    await unassignInScope(deps, found.row, found.roleName);
  });
}

/**
 * `role: null` means the member was removed. Only the built-in member roles are touched: custom
 * roles and `auditor` were assigned on purpose and are not the organization's to take back.
 */
export async function syncMemberRole(
  deps: PermissionsDeps,
  input: { userId: string; tenantId: string; role: string | null },
): Promise<void> {
  const tenant = scopeOf({ tenant: input.tenantId });
  const wanted = (input.role ?? "")
    .split(",")
    .map((r) => r.trim())
    .filter((r) => r.length > 0);
  const unknown = wanted.filter((r) => !(MEMBER_ROLES as readonly string[]).includes(r));
  if (unknown.length > 0) throw PermissionsErrors.UNKNOWN_MEMBER_ROLE({ roles: unknown });
  await change(deps, tenant, async () => {
    const db = deps.context.db();
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
      if (!wanted.includes(role.name)) await unassignInScope(deps, row, role.name);
    }
    for (const name of wanted) {
      const role = builtIns.find((r) => r.name === name);
      if (!role)
        throw PermissionsErrors.ROLE_NOT_FOUND({ role: name }, `Built-in role '${name}' is missing: run seed()`);
      if (!current.some((row) => row.roleId === role.id)) await assignInScope(deps, input.userId, role, tenant);
    }
  });
}

/** Always global: `member` grants nothing inside a tenant, only reading one's own permissions. */
export async function assignDefaultRole(deps: PermissionsDeps, userId: string): Promise<Assignment> {
  return change(deps, null, async () => assignInScope(deps, userId, await findRole(deps, "member", null), null));
}

export async function revokeTenantAccess(
  deps: PermissionsDeps,
  input: { userId: string; tenantId: string; reason: string },
): Promise<number> {
  const tenant = scopeOf({ tenant: input.tenantId });
  return change(deps, tenant, async () => {
    const held = await deps.context
      .db()
      .select({ row: userRoles, roleName: roles.name })
      .from(userRoles)
      .innerJoin(roles, eq(roles.id, userRoles.roleId))
      .where(and(eq(userRoles.userId, input.userId), tenantIs(tenant)));
    for (const { row, roleName } of held) await unassignInScope(deps, row, roleName, { reason: input.reason });
    return held.length;
  });
}
