/**
 * Role changes: create, update and delete roles; grant and revoke their permissions; set their
 * parents (cycles refused, naming the cycle). Each runs in `change` and is audited in its savepoint.
 */
import { and, eq } from "drizzle-orm";
import { PermissionsErrors } from "./errors.js";
import { change, findOwnRole, insertGrants, loadRole, replaceParents, type PermissionsDeps } from "./internal.js";
import { assertPermissions, scopeOf, tenantIs, type CreateRoleInput, type Role, type Scope } from "./model.js";
import { rolePermissions, roles } from "./schema.js";

export async function createRole(deps: PermissionsDeps, input: CreateRoleInput, scope?: Scope): Promise<Role> {
  const tenant = scopeOf(scope);
  assertPermissions(input.permissions ?? []);
  return change(deps, tenant, async () => {
    const db = deps.context.db();
    const [existing] = await db
      .select({ id: roles.id })
      .from(roles)
      .where(and(tenantIs(tenant, roles.tenantId), eq(roles.name, input.name)));
    if (existing) throw PermissionsErrors.ROLE_NAME_TAKEN({ name: input.name });
    const [row] = await db
      .insert(roles)
      .values({ tenantId: tenant, name: input.name, description: input.description ?? null })
      .returning();
    await insertGrants(deps, row!.id, input.permissions ?? []);
    await replaceParents(deps, row!, input.inherits ?? [], tenant);
    const created = await loadRole(deps, row!.id);
    await deps.audit.recordAuditEvent({
      action: "role.created",
      target: { type: "role", id: created.id },
      tenantId: tenant,
      changes: { after: created },
    });
    return created;
  });
}

export async function updateRole(
  deps: PermissionsDeps,
  roleRef: string,
  patch: { name?: string; description?: string | null },
  scope?: Scope,
): Promise<Role> {
  const tenant = scopeOf(scope);
  return change(deps, tenant, async () => {
    const role = await findOwnRole(deps, roleRef, tenant);
    const before = await loadRole(deps, role.id);
    await deps.context
      .db()
      .update(roles)
      .set({
        ...(patch.name !== undefined ? { name: patch.name } : {}),
        ...(patch.description !== undefined ? { description: patch.description } : {}),
        updatedAt: new Date(),
      })
      .where(eq(roles.id, role.id));
    const after = await loadRole(deps, role.id);
    await deps.audit.recordAuditEvent({
      action: "role.updated",
      target: { type: "role", id: role.id },
      tenantId: tenant,
      changes: { before, after },
    });
    return after;
  });
}

export async function deleteRole(deps: PermissionsDeps, roleRef: string, scope?: Scope): Promise<void> {
  const tenant = scopeOf(scope);
  await change(deps, tenant, async () => {
    const role = await findOwnRole(deps, roleRef, tenant);
    const before = await loadRole(deps, role.id);
    await deps.context.db().delete(roles).where(eq(roles.id, role.id));
    await deps.audit.recordAuditEvent({
      action: "role.deleted",
      target: { type: "role", id: role.id },
      tenantId: tenant,
      changes: { before },
    });
  });
}

export async function grantPermissions(
  deps: PermissionsDeps,
  roleRef: string,
  permissions: string[],
  scope?: Scope,
): Promise<Role> {
  const tenant = scopeOf(scope);
  assertPermissions(permissions);
  return change(deps, tenant, async () => {
    const role = await findOwnRole(deps, roleRef, tenant);
    const before = await loadRole(deps, role.id);
    const granted = await insertGrants(deps, role.id, permissions);
    const after = await loadRole(deps, role.id);
    if (granted.length > 0) {
      await deps.audit.recordAuditEvent({
        action: "role.permissions_granted",
        target: { type: "role", id: role.id },
        tenantId: tenant,
        metadata: { granted },
        changes: { before: { permissions: before.permissions }, after: { permissions: after.permissions } },
      });
    }
    return after;
  });
}

export async function revokePermission(
  deps: PermissionsDeps,
  roleRef: string,
  permission: string,
  scope?: Scope,
): Promise<Role> {
  const tenant = scopeOf(scope);
  return change(deps, tenant, async () => {
    const role = await findOwnRole(deps, roleRef, tenant);
    const before = await loadRole(deps, role.id);
    const removed = await deps.context
      .db()
      .delete(rolePermissions)
      .where(and(eq(rolePermissions.roleId, role.id), eq(rolePermissions.permission, permission)))
      .returning();
    if (removed.length === 0) {
      throw PermissionsErrors.ROLE_NOT_FOUND(
        { role: role.id, permission },
        `Role '${role.name}' does not grant '${permission}'`,
      );
    }
    const after = await loadRole(deps, role.id);
    await deps.audit.recordAuditEvent({
      action: "role.permission_revoked",
      target: { type: "role", id: role.id },
      tenantId: tenant,
      metadata: { revoked: permission },
      changes: { before: { permissions: before.permissions }, after: { permissions: after.permissions } },
    });
    return after;
  });
}

export async function setRoleParents(
  deps: PermissionsDeps,
  roleRef: string,
  parents: string[],
  scope?: Scope,
): Promise<Role> {
  const tenant = scopeOf(scope);
  return change(deps, tenant, async () => {
    const role = await findOwnRole(deps, roleRef, tenant);
    const before = await loadRole(deps, role.id);
    await replaceParents(deps, role, parents, tenant);
    const after = await loadRole(deps, role.id);
    await deps.audit.recordAuditEvent({
      action: "role.parents_changed",
      target: { type: "role", id: role.id },
      tenantId: tenant,
      changes: { before: { inherits: before.inherits }, after: { inherits: after.inherits } },
    });
    return after;
  });
}
