/**
 * Assignment reads: the assignments made in a scope (whole or by keyset pages), and the tenants in
 * which a user holds any.
 */
import { and, asc, eq, isNotNull, sql } from "drizzle-orm";
import { toAssignment, type PermissionsDeps } from "./internal.js";
import { scopeOf, tenantIs, UUID, type Assignment, type AssignmentPage, type Scope } from "./model.js";
import { decodeCursor, encodeCursor, pageLimit, type PageOptions } from "./page.js";
import { roles, userRoles } from "./schema.js";

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

export async function listAssignments(
  deps: PermissionsDeps,
  filter: Scope & { userId?: string } = {},
): Promise<Assignment[]> {
  const tenant = scopeOf(filter);
  return deps.context.withTenant(tenant, async () => {
    const rows = await deps.context
      .db()
      .select({ row: userRoles, roleName: roles.name })
      .from(userRoles)
      .innerJoin(roles, eq(roles.id, userRoles.roleId))
      .where(and(tenantIs(tenant), filter.userId ? eq(userRoles.userId, filter.userId) : undefined))
      .orderBy(asc(userRoles.createdAt), asc(userRoles.id));
    return rows.map((r) => toAssignment(r.row, r.roleName));
  });
}

/** Oldest first (`listAssignments`' order); a cursor is bound to the scope and `userId` that issued it. */
export async function listAssignmentsPage(
  deps: PermissionsDeps,
  filter: Scope & { userId?: string } & PageOptions = {},
): Promise<AssignmentPage> {
  const tenant = scopeOf(filter);
  const limit = pageLimit(filter.limit);
  const userId = filter.userId ?? null;
  const after = filter.cursor
    ? decodeCursor(filter.cursor, "assignments", [tenant, userId], isAssignmentKey)
    : undefined;
  return deps.context.withTenant(tenant, async () => {
    const rows = await deps.context
      .db()
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
      rows.length > limit && last
        ? encodeCursor("assignments", [tenant, userId], [last.createdMicros, last.row.id])
        : null;
    return { assignments: page.map((r) => toAssignment(r.row, r.roleName)), nextCursor };
  });
}

/** Read in the platform scope (`"*"`): every tenant's assignments of the user, for a ban. */
export async function tenantsWithAssignments(deps: PermissionsDeps, userId: string): Promise<string[]> {
  return deps.context.withTenant("*", async () => {
    const rows = await deps.context
      .db()
      .selectDistinct({ tenantId: userRoles.tenantId })
      .from(userRoles)
      .where(and(eq(userRoles.userId, userId), isNotNull(userRoles.tenantId)));
    return rows.map((r) => r.tenantId!);
  });
}
