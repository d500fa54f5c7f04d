/**
 * Every step of an online tenant move can be crashed (the `afterStep` hook throws once the step is
 * recorded, as a killed CLI would leave it), then resumed to the same end or — before the switch —
 * aborted: the source is authoritative and writable again, and no publication, slot, subscription or
 * partial target row is left behind.
 */
import { randomUUID } from "node:crypto";
import type postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cheapHashingTestSdkOptions, useTwoDatabases } from "../../test/support.js";
import { coreCatalog } from "../core-modules.js";
import { createSdk, type Sdk } from "../index.js";
import { abortTenantMove } from "./tenant-move-admin.js";
import { replicationName } from "./tenant-move-online.js";
import { type MovePhase, moveTenant } from "./tenant-move.js";

const databases = useTwoDatabases({ TimeZone: "UTC" });
let sdk: Sdk;
const TABLES = ["permissions.roles", "permissions.role_permissions", "permissions.user_roles", "email.email_templates"];

const count = async (sql: postgres.Sql, query: string, ...params: unknown[]) => {
  const [row] = await sql.unsafe<{ n: number }[]>(`select count(*)::int as n from ${query}`, params as never[]);
  return row!.n;
};
const rows = async (sql: postgres.Sql, tenantId: string) => {
  const result: Record<string, number> = {};
  for (const table of TABLES) result[table] = await count(sql, `${table} where tenant_id = $1`, tenantId);
  return result;
};
const common = () => ({ topology: databases.topology, catalog: coreCatalog() });
const placement = async (tenantId: string) =>
  (await databases.mainSql`select database, state from platform.tenant_placements where tenant_id = ${tenantId}`)[0];
/** Whether tenant_db holds the tenant by its own residents (drizzle/0024): its state there, or null. */
const resident = async (tenantId: string) =>
  (
    await databases.tenantSql<
      { state: string }[]
    >`select state from platform.tenant_residents where tenant_id = ${tenantId}`
  )[0]?.state ?? null;
const phase = async (tenantId: string) =>
  (
    await databases.mainSql<{ phase: string }[]>`select phase from platform.tenant_moves where tenant_id = ${tenantId}`
  )[0]?.phase;

async function leftovers(tenantId: string) {
  const name = replicationName(tenantId);
  return (
    (await count(databases.mainSql, "pg_publication where pubname = $1", name)) +
    (await count(databases.mainSql, "pg_replication_slots where slot_name like $1", `%${name}%`)) +
    (await count(databases.tenantSql, "pg_subscription where subname = $1", name))
  );
}

async function newTenant() {
  const tenantId = randomUUID();
  await databases.mainSql`insert into auth.organizations (id, name, slug) values (${tenantId}, 'Steps', ${`steps-${tenantId}`})`;
  const user = await sdk.auth.createUser({
    email: `s-${randomUUID()}@example.test`,
    password: "correct horse battery",
    name: "S",
  });
  await sdk.withContext({ actor: { type: "system", id: "test" } }, async () => {
    const scope = { tenant: tenantId };
    await sdk.permissions.createRole({ name: "editor", permissions: ["docs:write"], inherits: ["member"] }, scope);
    await sdk.permissions.assignRole(user.id, "editor", scope);
    await sdk.permissions.assignRole(user.id, "member", scope);
    await sdk.email.createTemplate({
      tenantId,
      input: { key: "welcome", subject: "Hi {{name}}", html: "<p>{{name}}</p>", text: "{{name}}" },
    });
  });
  return tenantId;
}

/** Moves until the step `at` is recorded, then throws as a crash would. */
async function crashAt(tenantId: string, at: MovePhase) {
  const crash = moveTenant({
    ...common(),
    tenantId,
    to: "tenant_db",
    afterStep: (step) => {
      if (step === at) throw new Error(`crashed at ${at}`);
    },
  });
  await expect(crash).rejects.toThrow(`crashed at ${at}`);
  expect(await phase(tenantId)).toBe(at);
}

beforeAll(async () => {
  sdk = createSdk(cheapHashingTestSdkOptions(databases.main, { topology: databases.topology }));
  await sdk.seed();
}, 120_000);

afterAll(async () => {
  await sdk?.close();
});

describe("a crashed online move", () => {
  for (const at of ["preparing", "syncing", "cutover", "switched"] as const) {
    it(`resumes after a crash at '${at}' to the same end`, async () => {
      const tenantId = await newTenant();
      const before = await rows(databases.mainSql, tenantId);
      await crashAt(tenantId, at);
      const state = await placement(tenantId);
      if (at === "switched") expect(state).toEqual({ database: "tenant_db", state: "active" });
      else expect(state).toEqual({ database: "main", state: at === "cutover" ? "moving" : "active" });
      // The target holds the tenant from just before the switch on.
      expect(await resident(tenantId)).toBe(at === "switched" ? "active" : null);
      await expect(moveTenant({ ...common(), tenantId, to: "tenant_db" })).rejects.toMatchObject({
        kind: "usage",
        message: expect.stringContaining("--resume"),
      });

      const resumed = await moveTenant({ ...common(), tenantId, to: "tenant_db", resume: true });
      expect(resumed.resumed).toBe(true);
      expect(await placement(tenantId)).toEqual({ database: "tenant_db", state: "active" });
      expect(await phase(tenantId)).toBe("done");
      expect(await resident(tenantId)).toBe("active");
      expect(await rows(databases.tenantSql, tenantId)).toEqual(before);
      expect(Object.values(await rows(databases.mainSql, tenantId)).every((n) => n === 0)).toBe(true);
      expect(await leftovers(tenantId)).toBe(0);
    }, 120_000);
  }
});

describe("a cutover whose verification fails", () => {
  it("gives the tenant its writes back on the source, and --resume retries it", async () => {
    const tenantId = await newTenant();
    await crashAt(tenantId, "syncing");
    // A row the source never had: the target no longer matches it.
    await databases.tenantSql`insert into permissions.roles (tenant_id, name) values (${tenantId}, 'stray')`;
    await expect(moveTenant({ ...common(), tenantId, to: "tenant_db", resume: true })).rejects.toMatchObject({
      message: expect.stringMatching(/permissions\.roles differs.*writable on 'main' again/),
    });
    expect(await placement(tenantId)).toEqual({ database: "main", state: "active" });
    expect(await phase(tenantId)).toBe("syncing");
    expect(await resident(tenantId)).toBeNull();

    await databases.tenantSql`delete from permissions.roles where tenant_id = ${tenantId} and name = 'stray'`;
    const resumed = await moveTenant({ ...common(), tenantId, to: "tenant_db", resume: true });
    expect(resumed.tables.find((t) => t.table === "permissions.roles")?.rows).toBe(1);
    expect(await placement(tenantId)).toEqual({ database: "tenant_db", state: "active" });
    expect(await resident(tenantId)).toBe("active");
    expect(await leftovers(tenantId)).toBe(0);
  }, 120_000);

  it("catches a row that differs in one column, the counts equal", async () => {
    const tenantId = await newTenant();
    await crashAt(tenantId, "syncing");
    const [role] = await databases.tenantSql<{ id: string; name: string }[]>`
      select id, name from permissions.roles where tenant_id = ${tenantId} limit 1`;
    await databases.tenantSql`update permissions.roles set name = ${`${role!.name}-changed`} where id = ${role!.id}`;
    await expect(moveTenant({ ...common(), tenantId, to: "tenant_db", resume: true })).rejects.toMatchObject({
      message: expect.stringMatching(/permissions\.roles differs: 1 rows .* 1 rows/),
    });
    expect(await placement(tenantId)).toEqual({ database: "main", state: "active" });

    await databases.tenantSql`update permissions.roles set name = ${role!.name} where id = ${role!.id}`;
    await moveTenant({ ...common(), tenantId, to: "tenant_db", resume: true });
    expect(await placement(tenantId)).toEqual({ database: "tenant_db", state: "active" });
  }, 120_000);
});

describe("an aborted online move", () => {
  for (const at of ["preparing", "syncing", "cutover"] as const) {
    it(`after a crash at '${at}' leaves the source authoritative and writable, and nothing behind`, async () => {
      const tenantId = await newTenant();
      const before = await rows(databases.mainSql, tenantId);
      await crashAt(tenantId, at);

      const aborted = await abortTenantMove({ ...common(), tenantId });
      expect(aborted).toMatchObject({ from: "main", to: "tenant_db", phase: at });
      expect(await placement(tenantId)).toEqual({ database: "main", state: "active" });
      expect(await phase(tenantId)).toBe("aborted");
      expect(await resident(tenantId)).toBeNull();
      expect(await rows(databases.mainSql, tenantId)).toEqual(before);
      expect(Object.values(await rows(databases.tenantSql, tenantId)).every((n) => n === 0)).toBe(true);
      expect(await leftovers(tenantId)).toBe(0);
      // Writable on main again.
      await sdk.withContext({ actor: { type: "system", id: "test" } }, () =>
        sdk.permissions.createRole({ name: "after-abort", permissions: ["docs:read"] }, { tenant: tenantId }),
      );
      expect(
        await count(databases.mainSql, "permissions.roles where tenant_id = $1 and name = 'after-abort'", tenantId),
      ).toBe(1);
      // And a new move afterwards goes through.
      await moveTenant({ ...common(), tenantId, to: "tenant_db" });
      expect(await count(databases.tenantSql, "permissions.roles where tenant_id = $1", tenantId)).toBe(
        before["permissions.roles"]! + 1,
      );
    }, 120_000);
  }

  it("is refused once the move has switched (the way back is a move back)", async () => {
    const tenantId = await newTenant();
    await crashAt(tenantId, "switched");
    await expect(abortTenantMove({ ...common(), tenantId })).rejects.toMatchObject({
      kind: "usage",
      message: expect.stringContaining("--to main"),
    });
    await moveTenant({ ...common(), tenantId, to: "tenant_db", resume: true });
    await expect(abortTenantMove({ ...common(), tenantId })).rejects.toMatchObject({ kind: "usage" });
  }, 120_000);
});
