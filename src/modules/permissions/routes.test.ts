import { describe, expect, it } from "vitest";
import { json, signedInUser, tenantOf, useTestSdk, type SignedInUser } from "../../../test/support.js";
import { withRollback } from "../../testing/rollback.js";
import { members } from "../auth/index.js";
import { auditRows, createUser } from "./test-fixtures.js";

const { sdk, app } = useTestSdk();

const base = "/api/v1/permissions";

/** Makes `user` a member of `tenantId` (so X-Tenant-Id is accepted) with a built-in role mirrored. */
async function joinTenant(user: SignedInUser, tenantId: string, role: "admin" | "member") {
  await sdk.router.db("auth").insert(members).values({ organizationId: tenantId, userId: user.user.id, role });
  await sdk.permissions.syncMemberRole({ userId: user.user.id, tenantId, role });
  return { ...user.headers, "x-tenant-id": tenantId };
}

describe("roles over HTTP", () => {
  it("refuses without a session (401) and without the permission (403 naming it)", () =>
    withRollback(sdk, async () => {
      const anonymous = await app.request(`${base}/roles`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get("content-type")).toContain("application/problem+json");

      const user = await signedInUser(sdk);
      const denied = await app.request(`${base}/roles`, { headers: user.headers });
      expect(denied.status).toBe(403);
      expect(await denied.json()).toMatchObject({ code: "PERMISSION_DENIED", permission: "roles:read" });

      const post = await app.request(`${base}/roles`, json("POST", { name: "x" }, user.headers));
      expect(post.status).toBe(403);
      expect(await post.json()).toMatchObject({ permission: "roles:write" });
    }));

  it("lets a tenant owner create, read, change and delete a role of the tenant, audited", () =>
    withRollback(sdk, async () => {
      const owner = await signedInUser(sdk);
      const { tenant, headers } = await tenantOf(sdk, owner);

      const created = await app.request(
        `${base}/roles`,
        json("POST", { name: "billing", permissions: ["invoices:read"], inherits: ["auditor"] }, headers),
      );
      expect(created.status).toBe(201);
      const role = (await created.json()) as { id: string; tenantId: string; inherits: string[] };
      expect(role).toMatchObject({ tenantId: tenant.id, name: "billing", permissions: ["invoices:read"] });
      expect(await auditRows(sdk, "role.created", role.id)).toHaveLength(1);

      const listed = (await (await app.request(`${base}/roles`, { headers })).json()) as { roles: { name: string }[] };
      expect(listed.roles.map((r) => r.name)).toEqual(expect.arrayContaining(["billing", "owner", "auditor"]));
      expect((await app.request(`${base}/roles/${role.id}`, { headers })).status).toBe(200);

      const patched = await app.request(
        `${base}/roles/${role.id}`,
        json("PATCH", { description: "Invoices" }, headers),
      );
      expect(patched.status).toBe(200);
      expect(await patched.json()).toMatchObject({ description: "Invoices" });
      expect(await auditRows(sdk, "role.updated", role.id)).toHaveLength(1);

      const granted = await app.request(
        `${base}/roles/${role.id}/permissions`,
        json("POST", { permissions: ["invoices:*"] }, headers),
      );
      expect(granted.status).toBe(200);
      expect(await auditRows(sdk, "role.permissions_granted", role.id)).toHaveLength(1);
      const perms = await (await app.request(`${base}/roles/${role.id}/permissions`, { headers })).json();
      expect(perms).toEqual({
        permissions: ["invoices:*", "invoices:read"],
        effective: ["audit:read", "invoices:*", "invoices:read"],
      });

      const revoked = await app.request(`${base}/roles/${role.id}/permissions/${encodeURIComponent("invoices:*")}`, {
        method: "DELETE",
        headers,
      });
      expect(revoked.status).toBe(200);
      expect(await auditRows(sdk, "role.permission_revoked", role.id)).toHaveLength(1);

      const parents = await app.request(`${base}/roles/${role.id}/parents`, json("PUT", { parents: [] }, headers));
      expect(parents.status).toBe(200);
      expect(await auditRows(sdk, "role.parents_changed", role.id)).toHaveLength(1);

      const deleted = await app.request(`${base}/roles/${role.id}`, { method: "DELETE", headers });
      expect(deleted.status).toBe(204);
      expect(await auditRows(sdk, "role.deleted", role.id)).toHaveLength(1);
      expect((await app.request(`${base}/roles/${role.id}`, { headers })).status).toBe(404);
    }));

  it("answers bad input with 400 naming the field, a taken name with 409 and a cycle with 400", () =>
    withRollback(sdk, async () => {
      const owner = await signedInUser(sdk);
      const { headers } = await tenantOf(sdk, owner);
      const bad = await app.request(`${base}/roles`, json("POST", { name: "" }, headers));
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { errors: { path: string }[] }).errors[0]!.path).toBe("name");
      const badPermission = await app.request(
        `${base}/roles`,
        json("POST", { name: "x", permissions: ["NOPE"] }, headers),
      );
      expect(badPermission.status).toBe(400);
      expect(await badPermission.json()).toMatchObject({ code: "INVALID_PERMISSION" });

      expect((await app.request(`${base}/roles`, json("POST", { name: "a" }, headers))).status).toBe(201);
      const taken = await app.request(`${base}/roles`, json("POST", { name: "a" }, headers));
      expect(taken.status).toBe(409);
      expect(await taken.json()).toMatchObject({ code: "ROLE_NAME_TAKEN" });

      expect((await app.request(`${base}/roles`, json("POST", { name: "b", inherits: ["a"] }, headers))).status).toBe(
        201,
      );
      const cycle = await app.request(`${base}/roles/a/parents`, json("PUT", { parents: ["b"] }, headers));
      expect(cycle.status).toBe(400);
      expect(await cycle.json()).toMatchObject({ code: "INHERITANCE_CYCLE", cycle: ["a", "b", "a"] });
    }));

  it("keeps a tenant away from another tenant's roles and from global roles", () =>
    withRollback(sdk, async () => {
      const ownerA = await signedInUser(sdk);
      const ownerB = await signedInUser(sdk);
      const a = await tenantOf(sdk, ownerA);
      const b = await tenantOf(sdk, ownerB);
      const roleB = (await (
        await app.request(`${base}/roles`, json("POST", { name: "secret" }, b.headers))
      ).json()) as { id: string };

      expect((await app.request(`${base}/roles/${roleB.id}`, { headers: a.headers })).status).toBe(404);
      expect((await app.request(`${base}/roles/${roleB.id}`, json("PATCH", { name: "mine" }, a.headers))).status).toBe(
        404,
      );
      expect((await app.request(`${base}/roles/${roleB.id}`, { method: "DELETE", headers: a.headers })).status).toBe(
        404,
      );
      // Acting in B without being a member of it is refused before any permission check.
      const intoB = await app.request(`${base}/roles/${roleB.id}`, {
        headers: { ...ownerA.headers, "x-tenant-id": b.tenant.id },
      });
      expect(intoB.status).toBe(403);
      // Global roles are visible inside a tenant, but only platform administrators change them.
      const global = await app.request(
        `${base}/roles/auditor/permissions`,
        json("POST", { permissions: ["x:y"] }, a.headers),
      );
      expect(global.status).toBe(403);
      expect(await global.json()).toMatchObject({ code: "ROLE_OUT_OF_SCOPE" });
    }));
});

describe("assignments over HTTP", () => {
  it("assigns, lists and removes in the tenant, audited", () =>
    withRollback(sdk, async () => {
      const owner = await signedInUser(sdk);
      const other = await signedInUser(sdk);
      const { tenant, headers } = await tenantOf(sdk, owner);
      const inTenant = async () =>
        (await auditRows(sdk, "role.assigned", other.user.id)).filter((r) => r.tenantId === tenant.id).length;

      // Not a member yet: a tenant's roles go to its members only.
      const outsider = await app.request(
        `${base}/assignments`,
        json("POST", { userId: other.user.id, role: "auditor" }, headers),
      );
      expect(outsider.status).toBe(404);
      expect(await outsider.json()).toMatchObject({ code: "USER_NOT_IN_TENANT" });
      expect(await inTenant()).toBe(0);
      expect(await sdk.permissions.can(other.user.id, "audit:read", { tenant: tenant.id })).toBe(false);

      await joinTenant(other, tenant.id, "member");
      const before = await inTenant();
      const assigned = await app.request(
        `${base}/assignments`,
        json("POST", { userId: other.user.id, role: "auditor" }, headers),
      );
      expect(assigned.status).toBe(201);
      const assignment = (await assigned.json()) as { id: string; tenantId: string };
      expect(assignment.tenantId).toBe(tenant.id);
      expect(await inTenant()).toBe(before + 1);
      expect(await sdk.permissions.can(other.user.id, "audit:read", { tenant: tenant.id })).toBe(true);

      const listed = await app.request(`${base}/assignments?userId=${other.user.id}`, { headers });
      const roleNames = ((await listed.json()) as { assignments: { roleName: string }[] }).assignments.map(
        (a) => a.roleName,
      );
      expect(roleNames.sort()).toEqual(["auditor", "member"]); // member: mirrored from the membership
      const all = (await (await app.request(`${base}/assignments`, { headers })).json()) as {
        assignments: { userId: string }[];
      };
      expect(all.assignments.map((a) => a.userId)).toEqual(expect.arrayContaining([owner.user.id, other.user.id]));

      const removed = await app.request(`${base}/assignments/${assignment.id}`, { method: "DELETE", headers });
      expect(removed.status).toBe(204);
      expect(await auditRows(sdk, "role.unassigned", other.user.id)).toHaveLength(1);
      expect(await sdk.permissions.can(other.user.id, "audit:read", { tenant: tenant.id })).toBe(false);
      expect((await app.request(`${base}/assignments/${assignment.id}`, { method: "DELETE", headers })).status).toBe(
        404,
      );
      expect(
        (await app.request(`${base}/assignments`, json("POST", { userId: "nope", role: "auditor" }, headers))).status,
      ).toBe(400);
    }));

  it("stops a tenant admin from handing out more than they hold, or acting in another tenant", () =>
    withRollback(sdk, async () => {
      const owner = await signedInUser(sdk);
      const admin = await signedInUser(sdk);
      const { tenant } = await tenantOf(sdk, owner);
      const other = await tenantOf(sdk, await signedInUser(sdk));
      const headers = await joinTenant(admin, tenant.id, "admin");

      const escalate = await app.request(
        `${base}/assignments`,
        json("POST", { userId: admin.user.id, role: "owner" }, headers),
      );
      expect(escalate.status).toBe(403);
      expect(await escalate.json()).toMatchObject({ code: "PERMISSION_DENIED", permission: "*" });
      expect(await sdk.permissions.can(admin.user.id, "billing:refund", { tenant: tenant.id })).toBe(false);

      const ok = await app.request(
        `${base}/assignments`,
        json("POST", { userId: owner.user.id, role: "auditor" }, headers),
      );
      expect(ok.status).toBe(201);

      const otherAssignments = await sdk.permissions.listAssignments({ tenant: other.tenant.id });
      const foreign = await app.request(`${base}/assignments/${otherAssignments[0]!.id}`, {
        method: "DELETE",
        headers,
      });
      expect(foreign.status).toBe(404);
      expect(await sdk.permissions.listAssignments({ tenant: other.tenant.id })).toHaveLength(1);
    }));

  it("lets a platform administrator act in the global scope, and nobody else", () =>
    withRollback(sdk, async () => {
      const platform = await signedInUser(sdk);
      await sdk.permissions.assignRole(platform.user.id, "owner");

      const created = await app.request(
        `${base}/roles`,
        json("POST", { name: "platform-support", permissions: ["support:*"] }, platform.headers),
      );
      expect(created.status).toBe(201);
      expect(await created.json()).toMatchObject({ tenantId: null });
      const user = await signedInUser(sdk);
      const global = await app.request(
        `${base}/assignments`,
        json("POST", { userId: user.user.id, role: "platform-support" }, platform.headers),
      );
      expect(global.status).toBe(201);
      expect(await sdk.permissions.can(user.user.id, "support:tickets:read")).toBe(true);

      // Without a global role, the global scope is closed (a tenant owner's `*` is scoped: service tests).
      const denied = await app.request(`${base}/roles`, json("POST", { name: "sneaky" }, user.headers));
      expect(denied.status).toBe(403);
      expect(await denied.json()).toMatchObject({ permission: "roles:write" });
    }));
});

describe("checks over HTTP", () => {
  it("checks many permissions of oneself, and of others only with permissions:check", () =>
    withRollback(sdk, async () => {
      const owner = await signedInUser(sdk);
      const member = await signedInUser(sdk);
      const { tenant, headers } = await tenantOf(sdk, owner);
      const memberHeaders = await joinTenant(member, tenant.id, "member");

      const self = await app.request(
        `${base}/check`,
        json("POST", { permissions: ["audit:read", "roles:read"] }, memberHeaders),
      );
      expect(self.status).toBe(200);
      expect(await self.json()).toEqual({
        userId: member.user.id,
        tenantId: tenant.id,
        allowed: false,
        results: { "audit:read": false, "roles:read": false },
      });

      const forbidden = await app.request(
        `${base}/check`,
        json("POST", { userId: owner.user.id, permissions: ["x:y"] }, memberHeaders),
      );
      expect(forbidden.status).toBe(403);
      expect(await forbidden.json()).toMatchObject({ code: "PERMISSION_DENIED", permission: "permissions:check" });

      const byOwner = await app.request(
        `${base}/check`,
        json("POST", { userId: member.user.id, permissions: ["permissions:read:self"] }, headers),
      );
      expect(await byOwner.json()).toMatchObject({ allowed: true });
      expect((await app.request(`${base}/check`, json("POST", { permissions: [] }, headers))).status).toBe(400);
      expect((await app.request(`${base}/check`, json("POST", { permissions: ["x"] }))).status).toBe(401);
    }));

  it("answers GET /me/permissions with the user's permissions in the tenant", () =>
    withRollback(sdk, async () => {
      const owner = await signedInUser(sdk);
      const { tenant, headers } = await tenantOf(sdk, owner);
      const res = await app.request("/api/v1/me/permissions", { headers });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({
        userId: owner.user.id,
        tenantId: tenant.id,
        permissions: ["*", "permissions:read:self"],
      });
      expect((await app.request("/api/v1/me/permissions")).status).toBe(401);

      await sdk.permissions.unassignRole(owner.user.id, "member");
      const bare = await signedInUser(sdk);
      await sdk.permissions.unassignRole(bare.user.id, "member");
      const denied = await app.request("/api/v1/me/permissions", { headers: bare.headers });
      expect(denied.status).toBe(403);
      expect(await denied.json()).toMatchObject({ permission: "permissions:read:self" });
    }));
});

/** Follows `nextCursor` from the first page of `path` (`limit` rows a page); the ids seen and the pages read. */
async function walk(path: string, key: "roles" | "assignments", limit: number, headers: Record<string, string>) {
  const ids: string[] = [];
  let pages = 0;
  let cursor: string | null = null;
  do {
    const query = new URLSearchParams({ limit: String(limit), ...(cursor ? { cursor } : {}) });
    const res = await app.request(`${path}?${query}`, { headers });
    expect(res.status).toBe(200);
    const page = (await res.json()) as Record<typeof key, { id: string }[]> & { nextCursor: string | null };
    expect(page[key].length).toBeLessThanOrEqual(limit);
    ids.push(...page[key].map((row) => row.id));
    cursor = page.nextCursor;
    pages++;
  } while (cursor !== null && pages < 50);
  return { ids, pages };
}

const cursorOf = (parts: unknown[]) => Buffer.from(JSON.stringify(parts)).toString("base64url");

describe("paging the lists over HTTP", () => {
  it("pages roles and assignments in the unpaged order, without overlap or gap", () =>
    withRollback(sdk, async () => {
      const owner = await signedInUser(sdk);
      const { tenant, headers } = await tenantOf(sdk, owner);
      for (const name of ["page-a", "page-b", "page-c", "page-d", "page-e"]) {
        expect((await app.request(`${base}/roles`, json("POST", { name }, headers))).status).toBe(201);
      }
      for (let i = 0; i < 5; i++)
        await sdk.permissions.assignRole(await createUser(sdk), "auditor", { tenant: tenant.id });

      const allRoles = (await (await app.request(`${base}/roles?limit=200`, { headers })).json()) as {
        roles: { id: string }[];
        nextCursor: null;
      };
      expect(allRoles.nextCursor).toBeNull();
      expect(allRoles.roles.length).toBe(5 + 4); // and the 4 built-in roles
      const roles = await walk(`${base}/roles`, "roles", 4, headers);
      expect(roles.pages).toBe(3);
      expect(roles.ids).toEqual(allRoles.roles.map((r) => r.id));

      const allAssignments = (await sdk.permissions.listAssignments({ tenant: tenant.id })).map((a) => a.id);
      expect(allAssignments.length).toBe(6); // and the owner's
      const assignments = await walk(`${base}/assignments`, "assignments", 2, headers);
      expect(assignments.pages).toBe(3);
      expect(assignments.ids).toEqual(allAssignments);
      // Existing clients: no paging parameters, the same fields (the first 50 rows).
      const plain = (await (await app.request(`${base}/assignments`, { headers })).json()) as {
        assignments: { id: string }[];
      };
      expect(plain.assignments.map((a) => a.id)).toEqual(allAssignments);
    }));

  it("answers a malformed or tampered cursor and a bad limit with 400 problem+json", () =>
    withRollback(sdk, async () => {
      const owner = await signedInUser(sdk);
      const { tenant, headers } = await tenantOf(sdk, owner);
      const bad = [
        `${base}/roles?cursor=not-a-cursor`,
        `${base}/roles?cursor=${cursorOf(["roles", tenant.id, "yes", 42])}`,
        `${base}/roles?cursor=${cursorOf(["assignments", tenant.id, null, "1", "00000000-0000-4000-8000-000000000000"])}`,
        `${base}/assignments?cursor=${cursorOf(["assignments", tenant.id, null, "99999999999999999", "00000000-0000-4000-8000-000000000000"])}`,
        `${base}/assignments?cursor=${cursorOf(["assignments", tenant.id, null, "1", "1; drop table x"])}`,
        `${base}/assignments?cursor=${"A".repeat(1025)}`,
      ];
      for (const url of bad) {
        const res = await app.request(url, { headers });
        expect(res.status, url).toBe(400);
        expect(res.headers.get("content-type")).toContain("application/problem+json");
      }
      const invalid = await app.request(`${base}/assignments?cursor=${cursorOf(["assignments", tenant.id])}`, {
        headers,
      });
      expect(await invalid.json()).toMatchObject({ code: "INVALID_CURSOR" });
      for (const limit of ["0", "201", "1.5", "ten"]) {
        const res = await app.request(`${base}/roles?limit=${limit}`, { headers });
        expect(res.status, limit).toBe(400);
        expect(((await res.json()) as { errors: { path: string }[] }).errors[0]!.path).toBe("limit");
      }
    }));

  it("refuses another tenant's cursor, and no cursor reaches another tenant's rows", () =>
    withRollback(sdk, async () => {
      const a = await tenantOf(sdk, await signedInUser(sdk));
      const b = await tenantOf(sdk, await signedInUser(sdk));
      expect((await app.request(`${base}/roles`, json("POST", { name: "b-secret" }, b.headers))).status).toBe(201);
      const pageB = (await (await app.request(`${base}/roles?limit=1`, { headers: b.headers })).json()) as {
        nextCursor: string;
      };
      const assignmentsB = (await (
        await app.request(`${base}/assignments?limit=1`, { headers: b.headers })
      ).json()) as {
        assignments: unknown[];
        nextCursor: string | null;
      };
      expect(assignmentsB.assignments).toHaveLength(1);

      const stolen = await app.request(`${base}/roles?cursor=${pageB.nextCursor}`, { headers: a.headers });
      expect(stolen.status).toBe(400);
      const body = await stolen.text();
      expect(body).toContain("INVALID_CURSOR");
      expect(body).not.toContain("b-secret");

      // A cursor forged for A's own scope, positioned before everything: still only A's and global rows.
      const forged = await app.request(
        `${base}/roles?limit=200&cursor=${cursorOf(["roles", a.tenant.id, false, ""])}`,
        { headers: a.headers },
      );
      const roles = ((await forged.json()) as { roles: { name: string; tenantId: string | null }[] }).roles;
      expect(roles.map((r) => r.name)).not.toContain("b-secret");
      expect(roles.every((r) => r.tenantId === null || r.tenantId === a.tenant.id)).toBe(true);
      const forgedAssignments = await app.request(
        `${base}/assignments?cursor=${cursorOf(["assignments", a.tenant.id, null, "0", "00000000-0000-4000-8000-000000000000"])}`,
        { headers: a.headers },
      );
      const listed = ((await forgedAssignments.json()) as { assignments: { tenantId: string }[] }).assignments;
      expect(listed.length).toBeGreaterThan(0);
      expect(listed.every((x) => x.tenantId === a.tenant.id)).toBe(true);
    }));
});
