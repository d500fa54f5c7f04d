/**
 * A tenant moved to a database of its own is served from there by the running API — same SDK, same
 * app, no restart, no change to module code — and its writes are refused while it moves.
 *
 * Two real databases cloned from the migrated template: `main` (control plane and every other
 * tenant) and `tenant_db`. The tenant is created and used on main, moved with moveTenant (what
 * `sv-sdk tenant:move` runs), then used again over HTTP.
 */
import { coreCatalog } from "../src/core-modules.js";
import { randomUUID } from "node:crypto";
import type postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../src/app.js";
import { moveTenant } from "../src/db/tenant-move.js";
import type { Topology } from "../src/db/topology.js";
import { createSdk, type Sdk } from "../src/index.js";
import { addTestMember } from "../src/testing.js";
import {
  json,
  signedInUser,
  tenantOf,
  cheapHashingTestSdkOptions,
  useTwoDatabases,
  type SignedInUser,
} from "./support.js";

/** The tenant write gate's advisory lock class (drizzle/0010, 'svtw'). */
const WRITE_GATE = 1_937_142_903;

const databases = useTwoDatabases();
let mainSql: postgres.Sql;
let tenantSql: postgres.Sql;
let topology: Topology;
let sdk: Sdk;
let app: ReturnType<typeof createApp>;
let owner: SignedInUser;
let bob: SignedInUser;
let tenantId: string;
let headers: Record<string, string>;

const count = async (sql: postgres.Sql, query: string, ...params: unknown[]) => {
  const [row] = await sql.unsafe<{ n: number }[]>(`select count(*)::int as n from ${query}`, params as never[]);
  return row!.n;
};

beforeAll(async () => {
  ({ mainSql, tenantSql, topology } = databases);
  // Deleting the dedicated database's platform roles first proves seed() reaches it.
  await tenantSql`delete from permissions.roles where tenant_id is null`;
  sdk = createSdk(cheapHashingTestSdkOptions(databases.main, { topology }));
  await sdk.seed();
  app = createApp(sdk, { logRequests: false });
  owner = await signedInUser(sdk);
  bob = await signedInUser(sdk);
  ({
    tenant: { id: tenantId },
    headers,
  } = await tenantOf(sdk, owner));

  const created = await app.request(
    "/api/v1/permissions/roles",
    json("POST", { name: "editor", permissions: ["docs:write"] }, headers),
  );
  expect(created.status).toBe(201);
  const moved = await moveTenant({ catalog: coreCatalog(), topology, tenantId, to: "tenant_db" });
  expect(moved).toMatchObject({ from: "main", to: "tenant_db" });
}, 120_000);

afterAll(async () => {
  await sdk?.close();
});

describe("a moved tenant", () => {
  it("has its platform rows seeded in every database of the topology", async () => {
    expect(await count(tenantSql, "permissions.roles where tenant_id is null and name = 'owner'")).toBe(1);
    expect(await count(tenantSql, "email.email_templates where tenant_id is null")).toBeGreaterThan(0);
  });

  it("is read from its own database over HTTP, with global grants from main still counted", async () => {
    expect(await count(mainSql, "permissions.roles where tenant_id = $1", tenantId)).toBe(0);
    expect(await count(tenantSql, "permissions.roles where tenant_id = $1 and name = 'editor'", tenantId)).toBe(1);

    const roles = await app.request("/api/v1/permissions/roles", { headers });
    expect(roles.status).toBe(200);
    const names = ((await roles.json()) as { roles: { name: string }[] }).roles.map((r) => r.name);
    expect(names).toContain("editor");

    const mine = await app.request("/api/v1/me/permissions", { headers });
    expect(mine.status).toBe(200);
    const { permissions } = (await mine.json()) as { permissions: string[] };
    expect(permissions).toContain("*"); // the tenant's owner role, in tenant_db
    expect(await count(mainSql, "permissions.user_roles where user_id = $1 and tenant_id is null", owner.user.id)).toBe(
      1,
    );
  });

  it("is written in its own database: the assignment, the user it names, and its audit row", async () => {
    // bob joins after the move: better-auth's member hook mirrors his membership into tenant_db.
    await addTestMember(sdk, tenantId, bob.user.id);
    expect(
      await count(tenantSql, "permissions.user_roles where user_id = $1 and tenant_id = $2", bob.user.id, tenantId),
    ).toBe(1);
    const assigned = await app.request(
      "/api/v1/permissions/assignments",
      json("POST", { userId: bob.user.id, role: "editor" }, headers),
    );
    expect(assigned.status).toBe(201);
    const { id } = (await assigned.json()) as { id: string };
    expect(await count(tenantSql, "permissions.user_roles where id = $1", id)).toBe(1);
    expect(await count(mainSql, "permissions.user_roles where id = $1", id)).toBe(0);
    // bob joined after the move: his user row was copied so the foreign key holds there.
    expect(await count(tenantSql, "auth.users where id = $1", bob.user.id)).toBe(1);
    // Two events, both beside the tenant's rows: the mirrored member role and the editor role.
    expect(
      await count(
        tenantSql,
        "audit.audit_logs where tenant_id = $1 and action = 'role.assigned' and target_id = $2",
        tenantId,
        bob.user.id,
      ),
    ).toBe(2);
    expect(
      await count(
        mainSql,
        "audit.audit_logs where tenant_id = $1 and action = 'role.assigned' and target_id = $2",
        tenantId,
        bob.user.id,
      ),
    ).toBe(0);
    expect(await sdk.permissions.can(bob.user.id, "docs:write", { tenant: tenantId })).toBe(true);
  });

  it("stops granting a revoked permission once its own database notifies the change", async () => {
    const other = createSdk(cheapHashingTestSdkOptions(databases.main, { topology }));
    try {
      await other.permissions.ready();
      const role = await sdk.permissions.createRole(
        { name: `temp-${randomUUID().slice(0, 8)}`, permissions: ["reports:read"] },
        { tenant: tenantId },
      );
      await sdk.permissions.assignRole(bob.user.id, role.id, { tenant: tenantId });
      expect(await count(tenantSql, "permissions.user_roles where role_id = $1", role.id)).toBe(1);
      expect(await other.permissions.can(bob.user.id, "reports:read", { tenant: tenantId })).toBe(true); // now cached there
      await sdk.permissions.unassignRole(bob.user.id, role.id, { tenant: tenantId });
      const deadline = Date.now() + 1000;
      let held = true;
      while (held && Date.now() < deadline) {
        held = await other.permissions.can(bob.user.id, "reports:read", { tenant: tenantId });
        if (held) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(held).toBe(false);
    } finally {
      await other.close();
    }
  });

  it("refuses writes with 503 TENANT_MOVING while it moves, keeps serving reads, and writes nothing", async () => {
    // What a move's cutover marks: the placement on main, and the residents where the rows are.
    await mainSql`update platform.tenant_placements set state = 'moving' where tenant_id = ${tenantId}`;
    await tenantSql`update platform.tenant_residents set state = 'moving' where tenant_id = ${tenantId}`;
    try {
      const refused = await app.request(
        "/api/v1/permissions/roles",
        json("POST", { name: "during-move", permissions: ["docs:read"] }, headers),
      );
      expect(refused.status).toBe(503);
      expect(refused.headers.get("content-type")).toContain("application/problem+json");
      expect(refused.headers.get("retry-after")).toBe("5");
      expect(await refused.json()).toMatchObject({ code: "TENANT_MOVING" });
      expect(await count(tenantSql, "permissions.roles where name = 'during-move'")).toBe(0);
      expect(await count(mainSql, "permissions.roles where name = 'during-move'")).toBe(0);

      const read = await app.request("/api/v1/permissions/roles", { headers });
      expect(read.status).toBe(200);
    } finally {
      await mainSql`update platform.tenant_placements set state = 'active' where tenant_id = ${tenantId}`;
      await tenantSql`update platform.tenant_residents set state = 'active' where tenant_id = ${tenantId}`;
    }
    const after = await app.request(
      "/api/v1/permissions/roles",
      json("POST", { name: "after-move", permissions: ["docs:read"] }, headers),
    );
    expect(after.status).toBe(201);
  });

  it("commits work that entered the tenant midway with the outer unit, or not at all", async () => {
    // better-auth's membership hooks do this: an /api/auth unit (no tenant) mirrors a member into
    // the tenant's permissions, which live in tenant_db.
    const name = `midway-${randomUUID().slice(0, 8)}`;
    const failing = sdk.transaction(async () => {
      await sdk.permissions.createRole({ name, permissions: ["docs:read"] }, { tenant: tenantId });
      throw new Error("the outer unit fails after the tenant's part finished");
    });
    await expect(failing).rejects.toThrow("outer unit fails");
    expect(await count(tenantSql, "permissions.roles where name = $1", name)).toBe(0);

    await sdk.transaction(async () => {
      await sdk.permissions.createRole({ name, permissions: ["docs:read"] }, { tenant: tenantId });
      // Not visible outside the unit until the outer unit commits.
      expect(await count(tenantSql, "permissions.roles where name = $1", name)).toBe(0);
    });
    expect(await count(tenantSql, "permissions.roles where name = $1", name)).toBe(1);
  });

  it("holds the tenant's write gate for as long as a unit of work is in the tenant", async () => {
    // Where the unit entered: the database holding the rows when the router remembers the placement,
    // else main (a move waits for the gate on both).
    const tryGate = async (sql = tenantSql) => {
      const [row] = await sql<
        { ok: boolean }[]
      >`select pg_try_advisory_lock(${WRITE_GATE}, hashtext(${tenantId})) as ok`;
      if (row!.ok) await sql`select pg_advisory_unlock(${WRITE_GATE}, hashtext(${tenantId}))`;
      return row!.ok;
    };
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const unit = sdk.router.withTenant(tenantId, async () => {
      entered();
      await held;
    });
    await inside;
    // Each client has two connections: the gate is tried (and released) on one at a time.
    try {
      const free = [await tryGate(tenantSql), await tryGate(mainSql)];
      expect(free.filter((ok) => !ok)).toHaveLength(1);
    } finally {
      release();
      await unit;
    }
    expect([await tryGate(tenantSql), await tryGate(mainSql)]).toEqual([true, true]);
  });
});
