/**
 * Role reads: one role, the roles visible from a scope (whole or by keyset pages), and the
 * permissions a set of roles grants with their parents. Each runs scoped to its tenant, so row-level
 * security stands behind the explicit filters.
 */
import { asc, sql } from "drizzle-orm";
import { findRole, loadRole, visibleRoles, withGrants, type PermissionsDeps } from "./internal.js";
import { scopeOf, type Role, type RolePage, type Scope } from "./model.js";
import { decodeCursor, encodeCursor, pageLimit, type PageOptions } from "./page.js";
import { roles } from "./schema.js";

/** A roles cursor's key: whether the last role was global, and its name (unique in its scope). */
const isRoleKey = (key: unknown[]): key is [boolean, string] =>
  key.length === 2 && typeof key[0] === "boolean" && typeof key[1] === "string";

export async function getRole(deps: PermissionsDeps, roleRef: string, scope?: Scope): Promise<Role> {
  const tenant = scopeOf(scope);
  return deps.context.withTenant(tenant, async () => loadRole(deps, (await findRole(deps, roleRef, tenant)).id));
}

export async function listRoles(deps: PermissionsDeps, scope?: Scope): Promise<Role[]> {
  const tenant = scopeOf(scope);
  return deps.context.withTenant(tenant, async () =>
    withGrants(deps, await visibleRoles(deps, tenant, undefined).orderBy(asc(roles.tenantId), asc(roles.name))),
  );
}

/** The tenant's own roles, then the global ones, each by name (`listRoles`' order). */
export async function listRolesPage(deps: PermissionsDeps, options: Scope & PageOptions = {}): Promise<RolePage> {
  const tenant = scopeOf(options);
  const limit = pageLimit(options.limit);
  const after = options.cursor ? decodeCursor(options.cursor, "roles", [tenant], isRoleKey) : undefined;
  const global = sql`(${roles.tenantId} is null)`;
  return deps.context.withTenant(tenant, async () => {
    const rows = await visibleRoles(
      deps,
      tenant,
      after ? sql`(${global}, ${roles.name}) > (${after[0]}::boolean, ${after[1]}::text)` : undefined,
    )
      .orderBy(global, asc(roles.name))
      .limit(limit + 1);
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    const nextCursor =
      rows.length > limit && last ? encodeCursor("roles", [tenant], [last.tenantId === null, last.name]) : null;
    return { roles: await withGrants(deps, page), nextCursor };
  });
}

export async function rolePermissionClosure(
  deps: PermissionsDeps,
  roleRefs: string[],
  scope?: Scope,
): Promise<string[]> {
  const tenant = scopeOf(scope);
  return deps.context.withTenant(tenant, async () => {
    const ids = (await Promise.all(roleRefs.map((ref) => findRole(deps, ref, tenant)))).map((r) => r.id);
    if (ids.length === 0) return [];
    const rows = await deps.context.db().execute<{ permission: string }>(sql`
      with recursive held(role_id) as (
        select unnest(string_to_array(${ids.join(",")}, ',')::uuid[])
        union
        select ri.inherits_role_id from permissions.role_inheritance ri join held h on ri.role_id = h.role_id
      )
      select distinct rp.permission from held h join permissions.role_permissions rp on rp.role_id = h.role_id
      order by 1`);
    return rows.map((r) => r.permission);
  });
}
