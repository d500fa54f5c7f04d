/**
 * Online tenant moves on logical replication, between two real databases of one PostgreSQL server: a
 * tenant written to over HTTP the whole time loses no write and answers 503 TENANT_MOVING only during
 * the cutover; it moves back after use (permission reads in between, its stale kept copy on the way
 * back cleared first); a dry run changes nothing; --finalize deletes the kept source rows.
 */
import { randomUUID } from "node:crypto";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { cheapHashingTestSdkOptions, json, signedInUser, tenantOf, useTwoDatabases } from "../../test/support.js";
import { createApp } from "../app.js";
import { coreCatalog } from "../core-modules.js";
import { createSdk, type Sdk } from "../index.js";
import { finalizeTenantMove, planTenantMove } from "./tenant-move-admin.js";
import { replicationName } from "./tenant-move-online.js";
import { moveTenant, type MoveTenantOptions } from "./tenant-move.js";

// TimeZone UTC, like the move's own connections.
const databases = useTwoDatabases({ TimeZone: "UTC" });
let sdk: Sdk;
let app: ReturnType<typeof createApp>;

const count = async (sql: postgres.Sql, query: string, ...params: unknown[]) => {
  const [row] = await sql.unsafe<{ n: number }[]>(`select count(*)::int as n from ${query}`, params as never[]);
  return row!.n;
};
const move = (options: Omit<MoveTenantOptions, "topology" | "catalog">) =>
  moveTenant({ topology: databases.topology, catalog: coreCatalog(), ...options });
/** tenant_db's residents row for the tenant (drizzle/0024): its state there, or null. */
const residentState = async (tenantId: string) =>
  (
    await databases.tenantSql<
      { state: string }[]
    >`select state from platform.tenant_residents where tenant_id = ${tenantId}`
  )[0]?.state ?? null;
const placement = async (tenantId: string) =>
  (await databases.mainSql`select database, state from platform.tenant_placements where tenant_id = ${tenantId}`)[0];

/** What replication leaves behind on either side: nothing, once a move has ended. */
async function replicationLeftovers(tenantId: string) {
  const name = replicationName(tenantId);
  return {
    publications: await count(databases.mainSql, "pg_publication where pubname = $1", name),
    slots: await count(databases.mainSql, "pg_replication_slots where slot_name like $1", `${name}%`),
    subscriptions: await count(databases.tenantSql, "pg_subscription where subname = $1", name),
  };
}

async function newTenant() {
  const owner = await signedInUser(sdk);
  const { tenant, headers } = await tenantOf(sdk, owner);
  for (const name of ["editor", "viewer"]) {
    const created = await app.request(
      "/api/v1/permissions/roles",
      json("POST", { name, permissions: ["docs:read"] }, headers),
    );
    expect(created.status).toBe(201);
  }
  return { tenantId: tenant.id, headers, owner };
}

beforeAll(async () => {
  sdk = createSdk(cheapHashingTestSdkOptions(databases.main, { topology: databases.topology }));
  await sdk.seed();
  app = createApp(sdk, { logRequests: false });
}, 120_000);

afterAll(async () => {
  await sdk?.close();
});

describe("an online tenant move", () => {
  it("keeps the tenant writable during the copy: no write lost, 503 only during the cutover", async () => {
    const { tenantId, headers } = await newTenant();
    const written: string[] = [];
    /** When each refused request was sent and answered. */
    const refused: { sent: number; answered: number }[] = [];
    const unexpected: string[] = [];
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const name = `w${i}`;
        const started = Date.now();
        const response = await app.request(
          "/api/v1/permissions/roles",
          json("POST", { name, permissions: ["docs:read"] }, headers),
        );
        if (response.status === 201) written.push(name);
        else if (response.status === 503) {
          const problem = (await response.json()) as { code: string };
          if (problem.code === "TENANT_MOVING") refused.push({ sent: started, answered: Date.now() });
          else unexpected.push(`${response.status} ${problem.code}`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        } else unexpected.push(`${response.status} ${await response.text()}`);
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const before = written.length;
    const phases: string[] = [];
    let cutoverFrom = Number.POSITIVE_INFINITY;
    let switchedAt = 0;
    const result = await move({
      tenantId,
      to: "tenant_db",
      // The step line comes just before the placement goes 'moving'; the hook runs just after the flip.
      onStep: (line) => {
        if (line.startsWith("syncing:")) cutoverFrom = Date.now();
      },
      afterStep: (phase) => {
        phases.push(phase);
        if (phase === "switched") switchedAt = Date.now();
      },
    });
    const writesDuringMove = written.length - before;
    await new Promise((resolve) => setTimeout(resolve, 300));
    writing = false;
    await writer;

    expect(unexpected).toEqual([]);
    expect(phases).toEqual(["preparing", "syncing", "cutover", "switched", "done"]);
    expect(result).toMatchObject({ mode: "online", from: "main", to: "tenant_db" });
    // The target's tables were analyzed for the rows they received, before the cutover.
    const [analyzed] = await databases.tenantSql<{ at: Date | null }[]>`
      select last_analyze as at from pg_stat_user_tables where schemaname = 'permissions' and relname = 'roles'`;
    expect(analyzed?.at?.getTime()).toBeLessThan(switchedAt);
    // The tenant was written to while its rows were copied, and again after the switch.
    expect(writesDuringMove).toBeGreaterThan(0);
    expect(await placement(tenantId)).toEqual({ database: "tenant_db", state: "active" });
    // No write lost: every role the API answered 201 for is on the target, none is left live on main.
    const names = (
      await databases.tenantSql<{ name: string }[]>`select name from permissions.roles where tenant_id = ${tenantId}`
    ).map((r) => r.name);
    for (const name of written) expect(names).toContain(name);
    expect(await count(databases.mainSql, "permissions.roles where tenant_id = $1", tenantId)).toBe(0);
    // 503s only for requests sent during the cutover.
    // 503s only for requests in flight during the cutover: answered after it began, sent before the flip.
    for (const { sent, answered } of refused) {
      expect(answered, "a 503 answered before the cutover").toBeGreaterThanOrEqual(cutoverFrom);
      expect(sent, "a 503 for a request sent after the flip").toBeLessThanOrEqual(switchedAt);
    }
    const window = refused.length > 0 ? refused.at(-1)!.answered - refused[0]!.sent : 0;
    console.info(
      `online move: ${result.rowsCopied} rows, ${written.length} writes (${writesDuringMove} during the move), cutover ${result.cutoverMs} ms, ${refused.length} writes answered 503 over ${window} ms`,
    );
    expect(await replicationLeftovers(tenantId)).toEqual({ publications: 0, slots: 0, subscriptions: 0 });

    // The source rows were kept (out of the live tables) until --finalize.
    expect(result.rowsRetained).toBeGreaterThan(0);
    expect(await count(databases.mainSql, "platform.tenant_move_retained where tenant_id = $1", tenantId)).toBe(
      result.rowsRetained,
    );
    const finalized = await finalizeTenantMove({ topology: databases.topology, catalog: coreCatalog(), tenantId });
    expect(finalized).toEqual({ source: "main", target: "tenant_db", rowsDeleted: result.rowsRetained });
    expect(await count(databases.mainSql, "platform.tenant_move_retained where tenant_id = $1", tenantId)).toBe(0);
    await expect(
      finalizeTenantMove({ topology: databases.topology, catalog: coreCatalog(), tenantId }),
    ).rejects.toMatchObject({ kind: "usage" });
  }, 180_000);

  it("moves there and back after use, clearing the stale copy and rebuilding the caches", async () => {
    const { tenantId, headers, owner } = await newTenant();
    const can = () => app.request("/api/v1/me/permissions", { headers });
    expect((await can()).status).toBe(200);
    await move({ tenantId, to: "tenant_db" });
    expect(await residentState(tenantId)).toBe("active");
    // Use on the target: a permission read fills tenant_db's cache, a new role and assignment.
    expect((await can()).status).toBe(200);
    expect(
      await count(databases.tenantSql, "permissions.permission_cache where tenant_id = $1", tenantId),
    ).toBeGreaterThan(0);
    const role = await app.request(
      "/api/v1/permissions/roles",
      json("POST", { name: "late", permissions: ["x:y"] }, headers),
    );
    expect(role.status).toBe(201);

    // Back to main, whose kept copy (not finalized) is stale: cleared, not compared.
    const copiedRows: number[] = [];
    let atCutover: string | null | undefined;
    const back = await move({
      tenantId,
      to: "main",
      onProgress: (p) => p.phase === "copy" && copiedRows.push(p.done),
      // The source (tenant_db) refuses the tenant's writes by its residents for the cutover, and
      // stops holding it at the switch.
      afterStep: async (phase) => {
        if (phase === "cutover") atCutover = await residentState(tenantId);
      },
    });
    expect(atCutover).toBe("moving");
    expect(await residentState(tenantId)).toBeNull();
    expect(back).toMatchObject({ from: "tenant_db", to: "main", mode: "online" });
    // The mover's own copy counted what it copied (nothing was written meanwhile): every row verified.
    expect(copiedRows.at(-1)).toBe(back.rowsCopied);
    expect(back.timings["initial copy"]).toBeGreaterThanOrEqual(0);
    expect(back.staleRowsCleared).toBeGreaterThan(0);
    expect(await placement(tenantId)).toEqual({ database: "main", state: "active" });
    expect(await count(databases.mainSql, "permissions.roles where tenant_id = $1 and name = 'late'", tenantId)).toBe(
      1,
    );
    expect(await count(databases.tenantSql, "permissions.roles where tenant_id = $1", tenantId)).toBe(0);
    const mine = await can();
    expect(mine.status).toBe(200);
    expect(((await mine.json()) as { permissions: string[] }).permissions).toContain("*");
    expect(await sdk.permissions.can(owner.user.id, "x:y", { tenant: tenantId })).toBe(true);

    // And there again, after more use.
    expect((await can()).status).toBe(200);
    const again = await move({ tenantId, to: "tenant_db" });
    expect(again.staleRowsCleared).toBeGreaterThan(0);
    expect(await count(databases.tenantSql, "permissions.roles where tenant_id = $1 and name = 'late'", tenantId)).toBe(
      1,
    );
    expect(await replicationLeftovers(tenantId)).toEqual({ publications: 0, slots: 0, subscriptions: 0 });
  }, 240_000);

  it("dry run: prints the plan with rows and sizes, and changes nothing", async () => {
    const { tenantId } = await newTenant();
    const plan = await planTenantMove({
      topology: databases.topology,
      catalog: coreCatalog(),
      tenantId,
      to: "tenant_db",
    });
    expect(plan).toMatchObject({ from: "main", to: "tenant_db", mode: "online", staleRowsOnTarget: 0 });
    const roles = plan.tables.find((t) => t.table === "permissions.roles")!;
    expect(roles.rows).toBeGreaterThanOrEqual(2);
    expect(roles.bytes).toBeGreaterThan(0);
    expect(plan.tables.find((t) => t.table === "permissions.permission_cache")?.derived).toBe(true);
    expect(await placement(tenantId)).toBeUndefined();
    expect(await count(databases.mainSql, "platform.tenant_moves where tenant_id = $1", tenantId)).toBe(0);
    expect(await count(databases.tenantSql, "permissions.roles where tenant_id = $1", tenantId)).toBe(0);
    expect(await replicationLeftovers(tenantId)).toEqual({ publications: 0, slots: 0, subscriptions: 0 });
    await expect(
      planTenantMove({ topology: databases.topology, catalog: coreCatalog(), tenantId: randomUUID(), to: "tenant_db" }),
    ).rejects.toMatchObject({ message: expect.stringContaining("no tenant") });
  });
});

describe("the test cluster of a file that moves tenants", () => {
  it("is its own: a write transaction other files hold open on the shared cluster does not hold up a move", async () => {
    const { tenantId } = await newTenant();
    // What a rolled-back test beside this file does: a transaction with a write, open for its whole test.
    const shared = postgres(inject("svTestDatabase").url, { max: 1, onnotice: () => {} });
    const reserved = await shared.reserve();
    try {
      await reserved`begin`;
      await reserved`select pg_current_xact_id()`;
      // A new slot on the shared cluster would wait for it (the move bounds that wait at 60 s).
      const moved = await move({ tenantId, to: "tenant_db" });
      expect(moved.timings.slot).toBeLessThan(5_000);
    } finally {
      await reserved`rollback`;
      reserved.release();
      await shared.end({ timeout: 5 });
    }
  }, 30_000);
});
