/**
 * The pool gate: no connection asked for while the unit holds one of the same pool, an acquire
 * timeout, unit deadlines and statement timeouts that end in a 503. (The burst of 50 concurrent auth
 * requests on a pool of 2 is a fault scenario: test/faults/pool-safety.fault.ts.)
 */
import { randomUUID } from "node:crypto";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { PoolReentryError } from "../src/db/pool-gate.js";
import { createSdk, type Sdk } from "../src/index.js";
import { createIsolatedDatabase, type IsolatedDatabase } from "../src/testing/database.js";

let db: IsolatedDatabase;
let owner: postgres.Sql;

beforeAll(async () => {
  db = await createIsolatedDatabase(inject("svTestDatabase"));
  owner = postgres(db.url, { max: 2, onnotice: () => {} });
});
afterAll(async () => {
  await owner.end({ timeout: 5 });
  await db.drop();
});

/** An SDK as production runs it (rate limits on, OWASP password cost), on a pool of `max`. */
function productionLikeSdk(max: number, pool: Record<string, number> = {}): Sdk {
  return createSdk({
    topology: { databases: { main: { url: db.url, appUrl: db.appUrl, pool: { max, ...pool } } } },
    environment: "test",
    auth: { secret: randomUUID() + randomUUID() },
  });
}

/** An error and the errors it wraps. */
function causes(error: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = error; e; e = (e as { cause?: unknown }).cause) chain.push(e);
  return chain;
}

describe("the pool gate", () => {
  it("refuses a unit of work that asks its own pool for a second connection, instead of deadlocking", async () => {
    const sdk = productionLikeSdk(2);
    try {
      const attempt = sdk.transaction(async () => {
        await sdk.db().execute("select 1");
        await sdk.router.pool("main").db.execute("select 1");
      });
      const error = await attempt.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(causes(error).some((e) => e instanceof PoolReentryError)).toBe(true);
      // Outside a unit of work the pool is the right place to go.
      await expect(sdk.router.pool("main").db.execute("select 1")).resolves.toBeDefined();
    } finally {
      await sdk.close();
    }
  });

  it("makes the request after the pool is exhausted wait at most the acquire timeout, then answers 503", async () => {
    const sdk = productionLikeSdk(1, { acquireTimeoutMs: 300 });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const holder = sdk.transaction(async () => {
      await sdk.db().execute("select 1");
      await held;
    });
    try {
      await new Promise((r) => setTimeout(r, 50));
      const started = Date.now();
      const waited = sdk.db().execute("select 1");
      await expect(waited).rejects.toMatchObject({ cause: { code: "DATABASE_BUSY", status: 503 } });
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(Date.now() - started).toBeLessThan(2_000);
      release();
      await holder;
      // Whole again: the next query gets the connection at once.
      await expect(sdk.db().execute("select 1")).resolves.toBeDefined();
      expect(sdk.router.pool("main").gate.active).toBe(0);
    } finally {
      release();
      await sdk.close();
    }
  });

  it("ends a unit of work at its deadline with 503 and rolls it back, giving its connection back", async () => {
    const sdk = productionLikeSdk(2, { transactionTimeoutMs: 400, statementTimeoutMs: 10_000 });
    const marker = `deadline-${randomUUID()}`;
    try {
      const started = Date.now();
      const unit = sdk.transaction(async () => {
        await sdk.db().execute(`insert into auth.rate_limits (key, count, last_request) values ('${marker}', 1, 0)`);
        await sdk.db().execute("select pg_sleep(3)");
      });
      await expect(unit).rejects.toMatchObject({ code: "DEADLINE_EXCEEDED", status: 503 });
      expect(Date.now() - started).toBeLessThan(1_500);
      // Nothing partial stayed (the sleeping statement ends, then the rollback runs).
      await new Promise((r) => setTimeout(r, 3_200));
      expect(await owner`select 1 from auth.rate_limits where key = ${marker}`).toHaveLength(0);
      expect(sdk.router.pool("main").gate.active).toBe(0);
    } finally {
      await sdk.close();
    }
  });

  it("gives a unit that asks for one its own deadline, longer or shorter than the pool's", async () => {
    const sdk = productionLikeSdk(2, { transactionTimeoutMs: 300, statementTimeoutMs: 10_000 });
    try {
      // Maintenance reading a whole trail in one snapshot outlives the API's transaction timeout.
      await expect(
        sdk.router.transaction(() => sdk.db().execute("select pg_sleep(0.6)"), { timeoutMs: 5_000 }),
      ).resolves.toBeDefined();
      await expect(sdk.router.transaction(() => sdk.db().execute("select pg_sleep(0.6)"))).rejects.toMatchObject({
        code: "DEADLINE_EXCEEDED",
      });
      const started = Date.now();
      await expect(
        sdk.router.transaction(() => sdk.db().execute("select pg_sleep(0.6)"), { timeoutMs: 100 }),
      ).rejects.toMatchObject({ code: "DEADLINE_EXCEEDED", status: 503 });
      expect(Date.now() - started).toBeLessThan(500);
    } finally {
      await sdk.close();
    }
  });

  it("answers a statement past statement_timeout with 503 DATABASE_BUSY", async () => {
    const sdk = productionLikeSdk(2, { statementTimeoutMs: 200 });
    try {
      await expect(sdk.transaction(() => sdk.db().execute("select pg_sleep(2)"))).rejects.toMatchObject({
        code: "DATABASE_BUSY",
        status: 503,
      });
    } finally {
      await sdk.close();
    }
  });
});
