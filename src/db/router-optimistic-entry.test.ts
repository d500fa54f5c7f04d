/**
 * A unit in a tenant whose placement the router remembers enters it optimistically: the entry goes
 * out with the unit's first statements instead of before them — on the database that holds the
 * tenant's rows (platform.enter_resident, drizzle/0024) when that is not main, which the unit then
 * opens only if it uses it; on main (platform.tenant_entry) otherwise — and its answer is checked
 * before anything commits. These tests hold the parts of that promise that a wrong implementation
 * breaks: the statements really go out before the entry answers, and a read sends main nothing; main,
 * opened midway, commits and rolls back with the unit; a memory gone stale (a move switched with no
 * notification heard) commits nothing where the tenant no longer lives; a tenant the entry finds
 * moving is not written; and a failed entry is the error the caller sees.
 */
import { eq, sql } from "drizzle-orm";
import type postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cheapHashingTestSdkOptions, signedInUser, tenantOf, useTwoDatabases } from "../../test/support.js";
import { createSdk, type Sdk } from "../index.js";
import { roles } from "../modules/permissions/index.js";
import type { Database } from "./unit-of-work.js";

const databases = useTwoDatabases();
let sdk: Sdk;
const statements: string[] = [];

beforeAll(async () => {
  sdk = createSdk(
    cheapHashingTestSdkOptions(databases.main, {
      topology: { ...databases.topology, tenants: { defaultDatabase: "tenant_db" } },
      onQuery: (database: string, query: string) => statements.push(`${database}: ${query.trim()}`),
    }),
  );
  await sdk.seed();
}, 60_000);

afterAll(async () => {
  await sdk?.close();
});

/** The tenant's role names, read through the permissions module's handle in a unit scoped to the tenant. */
const roleNames = (tenantId: string) =>
  sdk.withTenant(tenantId, async () =>
    (
      await (sdk.router.db("permissions") as Database)
        .select({ name: roles.name })
        .from(roles)
        .where(eq(roles.tenantId, tenantId))
    ).map((r) => r.name),
  );

/** Until the router answers placements from memory (its listener is up and the placements loaded). */
async function remembered(tenantId: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    await sdk.router.placementOf(tenantId);
    statements.length = 0;
    await sdk.router.placementOf(tenantId);
    if (statements.length === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error("the router never answered placements from memory");
}

/** Holds the tenant's write gate exclusively (what a move's cutover does) until `release` is called. */
async function holdWriteGate(sql: postgres.Sql, tenantId: string) {
  const reserved = await sql.reserve();
  await reserved`begin`;
  await reserved`select pg_advisory_xact_lock(1937142903, hashtext(${tenantId}))`;
  return async () => {
    await reserved`rollback`;
    reserved.release();
  };
}

const countRoles = async (sql: postgres.Sql, name: string) =>
  (await sql<{ n: number }[]>`select count(*)::int as n from permissions.roles where name = ${name}`)[0]!.n;

describe("optimistic entry into a remembered tenant", () => {
  it("sends the unit's statements before the entry answers, and waits for the answer before committing", async () => {
    const { tenant } = await tenantOf(sdk, await signedInUser(sdk));
    await sdk.permissions.createRole({ name: "pipelined", permissions: ["docs:write"] }, { tenant: tenant.id });
    await remembered(tenant.id);
    // The entry now waits behind the held gate; the unit's read does not.
    const release = await holdWriteGate(databases.tenantSql, tenant.id);
    statements.length = 0;
    let settled = false;
    const reading = roleNames(tenant.id).finally(() => (settled = true));
    try {
      for (let i = 0; i < 50 && !statements.some((s) => s.startsWith("tenant_db: select")); i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(statements.find((s) => s.startsWith("tenant_db: select platform.enter_resident"))).toBeDefined();
      expect(statements.some((s) => s.startsWith("tenant_db: select") && s.includes('"permissions"."roles"'))).toBe(
        true,
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(settled).toBe(false); // nothing commits before the entry has answered
      expect(statements).not.toContain("tenant_db: commit");
    } finally {
      await release();
    }
    expect(await reading).toContain("pipelined");
    // The whole read went to the tenant's database: main was not even sent BEGIN.
    expect(statements.filter((s) => s.startsWith("main:"))).toEqual([]);
  });

  it("with no memory of the placement yet, asks main before opening anything, then enters where the tenant lives", async () => {
    const { tenant } = await tenantOf(sdk, await signedInUser(sdk));
    await sdk.permissions.createRole({ name: "first-unit", permissions: ["docs:write"] }, { tenant: tenant.id });
    // A second instance, just started: its memory of the placements is not loaded.
    const seen: string[] = [];
    const fresh = createSdk(
      cheapHashingTestSdkOptions(databases.main, {
        topology: { ...databases.topology, tenants: { defaultDatabase: "tenant_db" } },
        onQuery: (database: string, query: string) => seen.push(`${database}: ${query.trim()}`),
      }),
    );
    try {
      const names = await fresh.withTenant(tenant.id, async () =>
        (
          await (fresh.router.db("permissions") as Database)
            .select({ name: roles.name })
            .from(roles)
            .where(eq(roles.tenantId, tenant.id))
        ).map((r) => r.name),
      );
      expect(names).toContain("first-unit");
      // Main was asked where the tenant lives, outside any transaction; the unit itself went to tenant_db
      // (main never held a connection while tenant_db's was asked for: the pools are taken in one order).
      const onMain = seen.filter((q) => q.startsWith("main:") && !q.startsWith("main: listen"));
      expect(onMain.some((q) => q.includes("platform.tenant_placements"))).toBe(true);
      expect(onMain.filter((q) => /^main: (begin|commit)/.test(q))).toEqual([]);
      expect(seen.some((q) => q.startsWith("tenant_db: select platform.enter_resident"))).toBe(true);
    } finally {
      await fresh.close();
    }
  });

  it("opens main only when the unit uses it, and commits or rolls it back with the unit", async () => {
    const { tenant } = await tenantOf(sdk, await signedInUser(sdk));
    await remembered(tenant.id);
    const mark = `lazy-${crypto.randomUUID()}`;
    const writeBoth = (fail: boolean) =>
      sdk.withTenant(tenant.id, async () => {
        await (sdk.router.db("permissions") as Database)
          .select({ name: roles.name })
          .from(roles)
          .where(eq(roles.tenantId, tenant.id));
        // Main, first used here, carries the tenant for its row-level security like any open transaction.
        const [row] = await sdk.router
          .database("main")
          .execute<{ tenant: string }>(
            sql`select current_setting('sv.tenant_id') as tenant, pg_notify('sv_lazy', ${mark})`,
          );
        expect(row!.tenant).toBe(tenant.id);
        await sdk.router.database("main").execute(sql`create temporary table if not exists lazy_probe (mark text)`);
        await sdk.router.database("main").execute(sql`insert into lazy_probe values (${mark})`);
        const [seen] = await sdk.router
          .database("main")
          .execute<{ n: number }>(sql`select count(*)::int as n from lazy_probe where mark = ${mark}`);
        expect(seen!.n).toBe(1);
        if (fail) throw new Error("the unit fails after writing main");
      });
    statements.length = 0;
    await expect(writeBoth(true)).rejects.toThrow("the unit fails");
    const mainStatements = statements.filter((s) => s.startsWith("main:"));
    expect(mainStatements[0]).toMatch(/^main: begin/);
    expect(mainStatements).toContain("main: rollback");
    statements.length = 0;
    await writeBoth(false);
    expect(statements.filter((s) => s.startsWith("main:")).at(-1)).toBe("main: commit");
    // Main commits after the tenant's database, as when it is opened first.
    expect(statements.indexOf("main: commit")).toBeGreaterThan(statements.indexOf("tenant_db: commit"));
  });

  it("commits nothing where a stale memory sent it, and the next unit goes where the control plane says", async () => {
    const { tenant } = await tenantOf(sdk, await signedInUser(sdk));
    await remembered(tenant.id);
    // A switch to main behind the router's back (no notification): the control plane says main, and
    // tenant_db no longer holds the tenant.
    await databases.mainSql`update platform.tenant_placements set database = 'main' where tenant_id = ${tenant.id}`;
    await databases.tenantSql`delete from platform.tenant_residents where tenant_id = ${tenant.id}`;
    try {
      const name = `stale-${crypto.randomUUID()}`;
      await expect(
        sdk.permissions.createRole({ name, permissions: ["docs:write"] }, { tenant: tenant.id }),
      ).rejects.toMatchObject({ code: "TENANT_MOVING" });
      expect(await countRoles(databases.tenantSql, name)).toBe(0);
      expect(await countRoles(databases.mainSql, name)).toBe(0);
      // The memory was dropped: the retry asks main where the tenant lives and writes there.
      await sdk.permissions.createRole({ name, permissions: ["docs:write"] }, { tenant: tenant.id });
      expect(await countRoles(databases.mainSql, name)).toBe(1);
      expect(await countRoles(databases.tenantSql, name)).toBe(0);
    } finally {
      await databases.mainSql`update platform.tenant_placements set database = 'tenant_db' where tenant_id = ${tenant.id}`;
      await databases.tenantSql`insert into platform.tenant_residents (tenant_id) values (${tenant.id})`;
    }
  });

  it("reads a tenant the entry finds moving, and refuses its writes without keeping any", async () => {
    const { tenant } = await tenantOf(sdk, await signedInUser(sdk));
    await sdk.permissions.createRole({ name: "before-moving", permissions: ["docs:write"] }, { tenant: tenant.id });
    await remembered(tenant.id);
    // What a move's cutover marks: the placement, and the source's residents.
    await databases.mainSql`update platform.tenant_placements set state = 'moving' where tenant_id = ${tenant.id}`;
    await databases.tenantSql`update platform.tenant_residents set state = 'moving' where tenant_id = ${tenant.id}`;
    try {
      await remembered(tenant.id);
      expect(await roleNames(tenant.id)).toContain("before-moving");
      const name = `refused-${crypto.randomUUID()}`;
      await expect(
        sdk.permissions.createRole({ name, permissions: ["docs:write"] }, { tenant: tenant.id }),
      ).rejects.toMatchObject({ code: "TENANT_MOVING" });
      expect(await countRoles(databases.tenantSql, name)).toBe(0);
    } finally {
      await databases.mainSql`update platform.tenant_placements set state = 'active' where tenant_id = ${tenant.id}`;
      await databases.tenantSql`update platform.tenant_residents set state = 'active' where tenant_id = ${tenant.id}`;
    }
  });

  it("tells the entry's own failure, not the aborted transaction behind it", async () => {
    const { tenant } = await tenantOf(sdk, await signedInUser(sdk), "on-main");
    // A tenant on main: the unit's statements queue behind the entry on main's connection.
    // Switched to main as a move does it: the placement, tenant_db's residents, the announcement.
    await databases.mainSql`update platform.tenant_placements set database = 'main' where tenant_id = ${tenant.id}`;
    await databases.tenantSql`delete from platform.tenant_residents where tenant_id = ${tenant.id}`;
    await databases.mainSql`select pg_notify('sv_placements', ${tenant.id})`;
    for (let i = 0; i < 50 && (await sdk.router.placementOf(tenant.id)) !== "main"; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const release = await holdWriteGate(databases.mainSql, tenant.id);
    try {
      await remembered(tenant.id);
      // The gate stays held past the runtime's lock timeout (2 s): the entry fails with 55P03.
      const failure = await roleNames(tenant.id).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure).toBeDefined();
      expect(JSON.stringify(failure)).not.toContain("25P02");
      expect(String((failure as Error).message)).not.toMatch(/current transaction is aborted/);
    } finally {
      await release();
    }
  });
});
