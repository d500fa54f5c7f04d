/**
 * The health probe against a real PostgreSQL: a database that never answers is called down after
 * the probe's timeout, but a process too busy to read the answer in time (its event loop blocked
 * past the timeout while the answer sat on the socket) does not call a healthy database down.
 */
import postgres from "postgres";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { createDatabaseHealth } from "./health.js";

let sql: postgres.Sql;

beforeAll(async () => {
  sql = postgres(inject("svTestDatabase").url, { max: 1, onnotice: () => {} });
  await sql`select 1`; // connected: a probe is one round trip
});
afterAll(async () => {
  await sql?.end({ timeout: 5 });
});

/** Blocks this process's event loop for `ms`, as a CPU-bound step would. */
function busy(ms: number) {
  const until = Date.now() + ms;
  while (Date.now() < until);
}

it("keeps a database up whose answer arrived while this process was too busy to read it", async () => {
  const changes: string[] = [];
  const health = createDatabaseHealth({
    name: "main",
    probeTimeoutMs: 200,
    probeClient: () => ({ ping: () => sql`select 1`, end: async () => undefined }),
    onChange: (state) => changes.push(state),
  });
  try {
    health.suspect(); // the probe's query goes out now
    busy(600); // its answer arrives meanwhile; the probe's timer expires unread
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(health.status().state).toBe("up");
    expect(changes).toEqual([]);
  } finally {
    await health.stop();
  }
});

it("calls a database that does not answer down after the probe's timeout, and up when it answers", async () => {
  let answering = false;
  const health = createDatabaseHealth({
    name: "frozen",
    probeTimeoutMs: 150,
    retryEveryMs: 100,
    probeClient: () => ({
      ping: () => (answering ? sql`select 1` : new Promise(() => undefined)),
      end: async () => undefined,
    }),
  });
  try {
    const started = Date.now();
    health.suspect();
    while (health.status().state === "up" && Date.now() - started < 2_000) await new Promise((r) => setTimeout(r, 20));
    expect(health.status()).toMatchObject({ state: "down", reason: "no_answer" });
    expect(() => health.check()).toThrow(expect.objectContaining({ code: "DATABASE_UNAVAILABLE" }));
    answering = true;
    while (health.status().state === "down" && Date.now() - started < 4_000)
      await new Promise((r) => setTimeout(r, 20));
    expect(health.status().state).toBe("up");
  } finally {
    await health.stop();
  }
});
