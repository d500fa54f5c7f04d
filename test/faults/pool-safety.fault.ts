/**
 * Pools never wedge — in the configuration users run: rate limiting on, the real password cost, the
 * cookie cache on, and a pool of 2 under 50 concurrent auth requests over real HTTP, on a cluster of
 * its own. Before the fix, 20 concurrent sign-ups wedged a pool of 10 for good (the rate limiter
 * asked the pool for a second connection while the request's unit of work held one). A fault
 * scenario, run alone: its 10 s bound is about the server, not about a neighbour's CPU.
 */
import { randomUUID } from "node:crypto";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createApp } from "../../src/app.js";
import { startServer, type RunningServer } from "../../src/http/serve.js";
import { createSdk, type Sdk } from "../../src/index.js";
import { TEST_ORIGIN } from "../../src/testing.js";
import { Cleanup, startCluster } from "./harness/processes.js";

const cleanup = new Cleanup();
let url: string;
let owner: postgres.Sql;

beforeAll(async () => {
  const { root, golden } = inject("faults");
  const cluster = await startCluster(root, golden, "pool-safety", cleanup);
  url = cluster.url;
  owner = postgres(url, { max: 1, onnotice: () => {} });
  cleanup.defer("owner connection", () => owner.end({ timeout: 5 }));
});
afterAll(() => cleanup.run());

/** The app's connections to the database right now. */
async function appConnections(): Promise<number> {
  const [row] = await owner<{ n: number }[]>`
    select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name = 'sv-sdk'`;
  return row!.n;
}

describe("a pool of 2 under 50 concurrent auth requests, rate limiting on", () => {
  it("answers every request (2xx/4xx/429) within 10 s and stays healthy", async () => {
    const sdk: Sdk = createSdk({
      topology: { databases: { main: { url, pool: { max: 2 } } } },
      environment: "test",
      auth: { secret: randomUUID() + randomUUID() },
    });
    const running: RunningServer = await startServer(createApp(sdk, { logRequests: false }).fetch, { port: 0 });
    const base = running.url;
    try {
      const headers = { "content-type": "application/json", origin: TEST_ORIGIN };
      const post = (path: string, body: unknown) =>
        fetch(`${base}${path}`, {
          method: "POST",
          headers,
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(10_000),
        });
      const password = "correct horse battery staple";
      const known = `known-${randomUUID()}@example.test`;
      expect((await post("/api/auth/sign-up/email", { email: known, password, name: "Known" })).status).toBe(200);

      const started = Date.now();
      const requests = Array.from({ length: 50 }, (_, i) => {
        switch (i % 3) {
          case 0:
            return post("/api/auth/sign-up/email", {
              email: `burst-${i}-${randomUUID()}@example.test`,
              password,
              name: "Burst",
            });
          case 1:
            return post("/api/auth/sign-in/email", { email: known, password });
          default:
            return fetch(`${base}/api/auth/get-session`, {
              headers: { origin: TEST_ORIGIN },
              signal: AbortSignal.timeout(10_000),
            });
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
      const ready = await fetch(`${base}/ready`, { signal: AbortSignal.timeout(5_000) });
      expect(ready.status).toBe(200);
      expect(await appConnections()).toBeLessThanOrEqual(2);
      expect(sdk.router.pool("main").gate.active).toBe(0);
    } finally {
      await running.close({ graceMs: 1_000 });
      await sdk.close();
    }
  }, 60_000);
});
