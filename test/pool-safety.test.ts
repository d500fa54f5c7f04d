/**
 * Pools never wedge, and nothing waits forever — in the configuration users run: rate limiting on,
 * the real password cost, the cookie cache on, and a pool of 2 under 50 concurrent auth requests
 * over real HTTP. Before the fix, 20 concurrent sign-ups wedged a pool of 10 for good (the rate
 * limiter asked the pool for a second connection while the request's unit of work held one).
 */
import { randomUUID } from "node:crypto";
import { serve, type ServerType } from "@hono/node-server";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { createApp } from "../src/app.js";
import { freePort } from "../src/db/embedded.js";
import { PoolReentryError } from "../src/db/pool-gate.js";
import { createSdk, type Sdk } from "../src/index.js";
import { createIsolatedDatabase, type IsolatedDatabase } from "../src/testing/database.js";
import { TEST_ORIGIN } from "../src/testing.js";

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

async function listen(sdk: Sdk): Promise<{ url: string; server: ServerType }> {
  const port = await freePort();
  const server = serve({ fetch: createApp(sdk, { logRequests: false }).fetch, port, hostname: "127.0.0.1" });
  return { url: `http://127.0.0.1:${port}`, server };
}

/** An error and the errors it wraps. */
function causes(error: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = error; e; e = (e as { cause?: unknown }).cause) chain.push(e);
  return chain;
}

const close = (server: ServerType) => new Promise<void>((resolve) => server.close(() => resolve()));

/** The app's connections to the database right now. */
async function appConnections(): Promise<number> {
  const [row] = await owner<{ n: number }[]>`
    select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name = 'sv-sdk'`;
  return row!.n;
}

describe("a pool of 2 under 50 concurrent auth requests, rate limiting on", () => {
  it("answers every request (2xx/4xx/429) within 10 s and stays healthy", async () => {
    const sdk = productionLikeSdk(2);
    const { url, server } = await listen(sdk);
    try {
      const headers = { "content-type": "application/json", origin: TEST_ORIGIN };
      const post = (path: string, body: unknown) =>
        fetch(`${url}${path}`, { method: "POST", headers, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
      const password = "correct horse battery staple";
      const known = `known-${randomUUID()}@example.test`;
      expect((await post("/api/auth/sign-up/email", { email: known, password, name: "Known" })).status).toBe(200);

      const started = Date.now();
      const requests = Array.from({ length: 50 }, (_, i) => {
        switch (i % 3) {
          case 0:
            return post("/api/auth/sign-up/email", { email: `burst-${i}-${randomUUID()}@example.test`, password, name: "Burst" });
          case 1:
            return post("/api/auth/sign-in/email", { email: known, password });
          default:
            return fetch(`${url}/api/auth/get-session`, { headers: { origin: TEST_ORIGIN }, signal: AbortSignal.timeout(10_000) });
        }
      });
      const responses = await Promise.all(requests);
      const elapsed = Date.now() - started;
      const statuses = responses.map((r) => r.status);
      expect(elapsed).toBeLessThan(10_000);
      expect(statuses.filter((s) => s >= 500)).toEqual([]);
      // The limits did their job: 10 sign-ups and 10 sign-ins a minute from one client address.
      expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
      expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(20);
      for (const response of responses) await response.body?.cancel();

      // Healthy afterwards: ready, and the pool is whole (no connection leaked beyond its size).
      const ready = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(5_000) });
      expect(ready.status).toBe(200);
      expect(await appConnections()).toBeLessThanOrEqual(2);
      expect(sdk.router.pool("main").gate.active).toBe(0);
    } finally {
      await close(server);
      await sdk.close();
    }
  }, 60_000);
});

describe("the pool gate", () => {
  it("refuses a unit of work that asks its own pool for a second connection, instead of deadlocking", async () => {
    const sdk = productionLikeSdk(2);
    try {
      const attempt = sdk.transaction(async () => {
        await sdk.db().execute("select 1");
        await sdk.router.pool("main").db.execute("select 1");
      });
      const error = await attempt.then(() => undefined, (e: unknown) => e);
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
