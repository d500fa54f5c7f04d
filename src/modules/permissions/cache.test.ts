/**
 * The in-process cache across SDK instances: two SDKs on databases that really commit, in the run's
 * topology.
 */
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cheapHashingTestSdkOptions, createIsolatedTopology, type IsolatedTopology } from "../../../test/support.js";
import { createCoreRouter } from "../../core-modules.js";
import { createSdk, type Sdk } from "../../index.js";
import { moduleOn } from "../../db/module-context.js";
import { silentLogger } from "../../logger.js";
import { auditModule } from "../audit/index.js";
import { permissionCache } from "./index.js";
import { createPermissions, createTenant, createUser } from "./test-fixtures.js";

let database: IsolatedTopology;
let a: Sdk;
let b: Sdk;

beforeAll(async () => {
  database = await createIsolatedTopology();
  a = createSdk(cheapHashingTestSdkOptions(database.main, database.placement));
  b = createSdk(cheapHashingTestSdkOptions(database.main, database.placement));
  await Promise.all([a.permissions.ready(), b.permissions.ready()]);
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  await database?.drop();
});

/** Polls `check` until it returns false; the elapsed milliseconds. */
async function untilFalse(check: () => Promise<boolean>, limitMs = 3000): Promise<number> {
  const started = performance.now();
  while (await check()) {
    if (performance.now() - started > limitMs) throw new Error(`still true after ${limitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return performance.now() - started;
}

/** Counts the queries `fn` sends, through a module on a router with a query hook. */
function countingModule(options: { cache: boolean }) {
  const counter = { queries: 0 };
  const router = createCoreRouter(database.topology, { onQuery: () => counter.queries++ });
  const permissions = createPermissions(router, {
    audit: moduleOn(router, auditModule, {}, silentLogger),
    cache: { enabled: options.cache },
  });
  return {
    permissions,
    async count(fn: () => Promise<unknown>) {
      const before = counter.queries;
      await fn();
      return counter.queries - before;
    },
    close: async () => {
      await permissions.stop();
      await router.close(5);
    },
  };
}

describe("cross-instance invalidation", () => {
  it("stops a revoked assignment on the other instance within one second", async () => {
    const [user, tenant] = await a.transaction(async () => [await createUser(a), await createTenant(a)] as const);
    await a.permissions.assignRole(user, "admin", { tenant });
    expect(await b.permissions.can(user, "roles:write", { tenant })).toBe(true);
    expect(await b.permissions.can(user, "roles:write", { tenant })).toBe(true); // now served from B's memory

    await a.permissions.unassignRole(user, "admin", { tenant });
    const elapsed = await untilFalse(() => b.permissions.can(user, "roles:write", { tenant }));
    expect(elapsed).toBeLessThan(1000);
  });

  it("stops a permission revoked from a role (every holder, through inheritance) within one second", async () => {
    const user = await a.transaction(() => createUser(a));
    await a.permissions.createRole({ name: "base-reader", permissions: ["reports:read", "reports:list"] });
    await a.permissions.createRole({ name: "analyst", inherits: ["base-reader"] });
    await a.permissions.assignRole(user, "analyst");
    expect(await b.permissions.can(user, "reports:read")).toBe(true);

    await a.permissions.revokePermission("base-reader", "reports:read");
    const elapsed = await untilFalse(() => b.permissions.can(user, "reports:read"));
    expect(elapsed).toBeLessThan(1000);
    expect(await b.permissions.can(user, "reports:list")).toBe(true);
  });

  it("never lets a rolled-back change into the cache", async () => {
    const user = await a.transaction(() => createUser(a));
    expect(await a.permissions.can(user, "audit:read")).toBe(false); // cached as "nothing"
    const refused = new Error("rolled back");
    await expect(
      a.transaction(async () => {
        await a.permissions.assignRole(user, "auditor");
        expect(await a.permissions.can(user, "audit:read")).toBe(true);
        throw refused;
      }),
    ).rejects.toBe(refused);
    expect(await a.permissions.can(user, "audit:read")).toBe(false);
  });
});

describe("query cost", () => {
  it("costs exactly one query for an uncached check, and none for a cached one", async () => {
    const user = await a.transaction(() => createUser(a));
    await a.permissions.assignRole(user, "auditor");

    const uncached = countingModule({ cache: false });
    try {
      await uncached.permissions.can(user, "warm:up"); // a new connection first reads the server's array types
      expect(await uncached.count(() => uncached.permissions.can(user, "audit:read"))).toBe(1); // fills permission_cache
      expect(await uncached.count(() => uncached.permissions.can(user, "audit:read"))).toBe(1); // reads it
      expect(await uncached.count(() => uncached.permissions.can(user, "audit:export"))).toBe(1);
    } finally {
      await uncached.close();
    }

    const cached = countingModule({ cache: true });
    try {
      await cached.permissions.ready();
      await cached.permissions.can(await a.transaction(() => createUser(a)), "warm:up");
      expect(await cached.count(() => cached.permissions.can(user, "audit:read"))).toBe(1);
      expect(await cached.count(() => cached.permissions.can(user, "audit:read"))).toBe(0);
      expect(await cached.count(() => cached.permissions.permissionsOf(user))).toBe(0);
    } finally {
      await cached.close();
    }
  });
});

describe("filling permission_cache", () => {
  it("stores a row only from a check that is a transaction of its own, and never while a change is under way", async () => {
    const user = await a.transaction(() => createUser(a));
    await a.permissions.createRole({ name: "report-reader", permissions: ["reports:read"] });
    await a.permissions.assignRole(user, "report-reader");
    const checks = createPermissions(a.router, { audit: a.audit, cache: { enabled: false } });
    const stored = async () =>
      (await a.router.db("permissions").select().from(permissionCache).where(eq(permissionCache.userId, user))).map(
        (r) => r.permissions,
      );

    // Inside a unit of work: answered, not stored (and no lock taken that a later change would upgrade).
    expect(await a.transaction(() => checks.can(user, "reports:read"))).toBe(true);
    expect(await stored()).toEqual([]);

    // While another unit's change holds the model lock: answered from what is committed, not stored.
    let locked!: () => void;
    let release!: () => void;
    const lockTaken = new Promise<void>((resolve) => (locked = resolve));
    const released = new Promise<void>((resolve) => (release = resolve));
    const change = a.transaction(async () => {
      await a.permissions.grantPermissions("report-reader", ["reports:export"]);
      locked();
      await released;
    });
    await lockTaken;
    expect(await checks.can(user, "reports:export")).toBe(false);
    expect(await stored()).toEqual([]);
    release();
    await change;

    expect(await checks.can(user, "reports:export")).toBe(true);
    expect(await stored()).toEqual([["reports:export", "reports:read"]]);
  });
});
