/**
 * The SDK's paged lists: keyset order equal to the unpaged lists, exact to the microsecond, and cursors
 * bound to the list, scope and filter that issued them.
 */
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { useTestSdk } from "../../../test/support.js";
import { withRollback } from "../../testing/rollback.js";
import type { AssignmentPage, RolePage } from "./index.js";
import { userRoles } from "./schema.js";
import { createTenant, createUser } from "./test-fixtures.js";

const { sdk } = useTestSdk();
const p = sdk.permissions;

/** Every page from the first, `next` fetching the page after a cursor. */
async function allPages<T extends RolePage | AssignmentPage>(
  next: (cursor: string | null) => Promise<T>,
): Promise<T[]> {
  const pages = [await next(null)];
  while (pages.at(-1)!.nextCursor) pages.push(await next(pages.at(-1)!.nextCursor));
  return pages;
}

describe("paged lists", () => {
  it("pages roles in listRoles' order, globally and in a tenant", () =>
    withRollback(sdk, async () => {
      const tenant = await createTenant(sdk);
      // Same name in both scopes: the key is (scope, name), so neither hides the other.
      for (const name of ["zeta", "alpha", "mid"]) await p.createRole({ name }, { tenant });
      for (const name of ["alpha", "omega"]) await p.createRole({ name });

      for (const scope of [{ tenant }, {}]) {
        const pages = await allPages((cursor) => p.listRolesPage({ ...scope, limit: 2, cursor }));
        expect(pages.slice(0, -1).every((page) => page.roles.length === 2)).toBe(true);
        expect(pages.flatMap((page) => page.roles.map((r) => r.id))).toEqual(
          (await p.listRoles(scope)).map((r) => r.id),
        );
      }
    }));

  it("pages assignments created within one millisecond exactly, oldest first", () =>
    withRollback(sdk, async () => {
      const tenant = await createTenant(sdk);
      const users = [
        await createUser(sdk),
        await createUser(sdk),
        await createUser(sdk),
        await createUser(sdk),
        await createUser(sdk),
      ];
      for (const user of users) await p.assignRole(user, "auditor", { tenant });
      // Microseconds apart, in reverse order of creation: a cursor rounded to milliseconds would repeat or skip.
      await sdk.withTenant(tenant, async () => {
        for (const [i, user] of users.entries()) {
          await sdk.router
            .db("permissions")
            .update(userRoles)
            .set({ createdAt: sql`timestamptz '2026-06-01 12:00:00.000100+00' - ${i} * interval '1 microsecond'` })
            .where(sql`${userRoles.userId} = ${user}`);
        }
      });

      const pages = await allPages((cursor) => p.listAssignmentsPage({ tenant, limit: 2, cursor }));
      expect(pages.map((page) => page.assignments.length)).toEqual([2, 2, 1]);
      expect(pages.flatMap((page) => page.assignments.map((a) => a.userId))).toEqual([...users].reverse());

      const one = await allPages((cursor) => p.listAssignmentsPage({ tenant, userId: users[2], limit: 1, cursor }));
      expect(one.flatMap((page) => page.assignments.map((a) => a.userId))).toEqual([users[2]]);
    }));

  it("refuses a bad limit, and a cursor of another list, scope or user filter", () =>
    withRollback(sdk, async () => {
      const [tenantA, tenantB] = [await createTenant(sdk), await createTenant(sdk)];
      const [userA, userB] = [await createUser(sdk), await createUser(sdk)];
      for (const role of ["auditor", "member"]) await p.assignRole(userA, role, { tenant: tenantA });
      await p.assignRole(userB, "auditor", { tenant: tenantA });

      for (const limit of [0, 201, 1.5, Number.NaN]) {
        await expect(p.listRolesPage({ limit })).rejects.toMatchObject({ code: "INVALID_LIMIT", status: 400 });
      }
      const roles = await p.listRolesPage({ tenant: tenantA, limit: 1 });
      const assignments = await p.listAssignmentsPage({ tenant: tenantA, userId: userA, limit: 1 });
      const refused = { code: "INVALID_CURSOR", status: 400 };
      await expect(p.listRolesPage({ tenant: tenantB, cursor: roles.nextCursor })).rejects.toMatchObject(refused);
      await expect(p.listRolesPage({ cursor: roles.nextCursor })).rejects.toMatchObject(refused);
      await expect(p.listAssignmentsPage({ tenant: tenantA, cursor: roles.nextCursor })).rejects.toMatchObject(refused);
      await expect(
        p.listAssignmentsPage({ tenant: tenantA, userId: userB, cursor: assignments.nextCursor }),
      ).rejects.toMatchObject(refused);
      await expect(
        p.listAssignmentsPage({ tenant: tenantB, userId: userA, cursor: assignments.nextCursor }),
      ).rejects.toMatchObject(refused);
      const next = await p.listAssignmentsPage({
        tenant: tenantA,
        userId: userA,
        limit: 1,
        cursor: assignments.nextCursor,
      });
      expect(next.assignments).toHaveLength(1);
      expect(next.nextCursor).toBeNull();
    }));
});
