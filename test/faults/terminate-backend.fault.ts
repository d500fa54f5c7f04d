/**
 * Scenario 2 — a backend terminated mid-transaction (`pg_terminate_backend`, as an operator or a
 * failover does). The request whose unit of work ran there gets 503 with Retry-After within 2 s,
 * its row and its audit row are both gone (written before the kill, never committed), and the pool
 * serves again by itself — alone, and with every connection of the pool killed under load.
 */
import type postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appConnections, POOL_MAX, type RunningApp } from "./harness/app.js";
import { faultRequests, startFaultApp } from "./harness/fault-app.js";
import { writtenPairs } from "./harness/fault-routes.js";
import { describe as outcome, isRetryable503, type Answer } from "./harness/http.js";
import { percentile, runLoad, waitFor } from "./harness/load.js";
import { Cleanup } from "./harness/processes.js";

/** A request whose backend died must be answered within this (a 503, not a hang). */
const FAIL_FAST_MS = 2_000;

const cleanup = new Cleanup();
let app: RunningApp;
let owner: postgres.Sql;
let tenantHeaders: Record<string, string>;

beforeAll(async () => {
  ({ app, owner, tenantHeaders } = await startFaultApp("terminate", cleanup));
});
afterAll(() => cleanup.run());

const { write, readRoles } = faultRequests(() => ({ app, tenantHeaders }));

/** The backends sleeping for the fault route under `markerPrefix`. */
async function sleepingBackends(markerPrefix: string): Promise<number[]> {
  const rows = await owner<{ pid: number }[]>`
    select pid from pg_stat_activity
    where application_name = 'sv-sdk' and state = 'active' and query like ${`%fault:${markerPrefix}%`}`;
  return rows.map((r) => r.pid);
}

async function terminate(pids: number[]): Promise<number> {
  await owner`select pg_terminate_backend(pid) from unnest(${pids}::int[]) as pid`;
  return performance.now();
}

/**
 * The database never went away, only one session of it did: every request sent after the killed ones
 * were answered must succeed — `rounds` rounds of POOL_MAX writes at once, so every slot of the pool
 * opens a new session and serves. Returns each answer that was not a 201.
 */
async function servesEveryRequest(marker: string, rounds = 3): Promise<string[]> {
  const failures: string[] = [];
  for (let round = 0; round < rounds; round++) {
    const answers = await Promise.all(Array.from({ length: POOL_MAX }, (_, i) => write(`${marker}-${round}-${i}`)));
    for (const answer of answers) if (answer.status !== 201) failures.push(`round ${round}: ${outcome(answer)}`);
  }
  return failures;
}

/** The app's log lines about requests refused for an unavailable database, with their causes. */
const refusals = () => app.logs.filter((line) => line.includes("request refused"));

describe("a backend terminated mid-transaction", () => {
  it("fails its request with 503 within 2 s, keeps neither the row nor its audit row, and the pool serves every request after it", async () => {
    const pending = write("single-0", [4]);
    let pids: number[] = [];
    expect(await waitFor(async () => (pids = await sleepingBackends("single-")).length === 1, 5_000)).toBeDefined();
    const killedAt = await terminate(pids);
    const answer = await pending;
    const before = refusals().length;
    const failures = await servesEveryRequest("single-after");

    expect(isRetryable503(answer), `${outcome(answer)} ${answer.body}`).toBe(true);
    expect(outcome(answer)).toBe("503 DATABASE_UNAVAILABLE");
    expect(answer.endedAt - killedAt, "answered that long after its backend died").toBeLessThan(FAIL_FAST_MS);
    const pairs = await writtenPairs(owner, "single-");
    expect(pairs.partial).toEqual([]);
    expect(pairs.committed.has("single-0")).toBe(false);
    expect(failures, `requests after the kill failed; the app logged: ${refusals().slice(before).join("\n")}`).toEqual(
      [],
    );
    console.log(`[faults] terminated backend: 503 ${Math.round(answer.endedAt - killedAt)} ms after the kill`);
  });

  it("under load, with every connection of the pool terminated at once: each unit 503 within 2 s, no partial rows, every later request served", async () => {
    // Reads keep coming while the writers hold every connection; they queue for a turn at the pool.
    const reads = runLoad(cleanup, 2, async () => ({ kind: "read", answer: await readRoles() }), 50);
    const writers = Array.from({ length: POOL_MAX }, (_, i) => write(`multi-${i}`, [4]));
    let pids: number[] = [];
    const holding = await waitFor(async () => (pids = await sleepingBackends("multi-")).length === POOL_MAX, 5_000);
    if (!holding) {
      const early = await Promise.all(writers);
      await reads.stop();
      expect.fail(
        `only ${pids.length} of the ${POOL_MAX} writers reached pg_sleep; they answered ${early.map(outcome).join(", ")}`,
      );
    }
    const killedAt = await terminate(pids);
    const answers: Answer[] = await Promise.all(writers);
    const before = refusals().length;
    const failures = await servesEveryRequest("multi-after");
    const samples = await reads.stop();

    for (const [i, answer] of answers.entries()) {
      expect(isRetryable503(answer), `writer ${i}: ${outcome(answer)} ${answer.body}`).toBe(true);
      expect(answer.endedAt - killedAt, `writer ${i} answered that long after the kill`).toBeLessThan(FAIL_FAST_MS);
    }
    // Reads never got a 500 or a dropped connection: a 200, or a 503 to retry.
    const bad = samples.filter((s) => s.status !== 200 && !isRetryable503(s)).map(outcome);
    expect(bad).toEqual([]);
    const pairs = await writtenPairs(owner, "multi-");
    expect(pairs.partial).toEqual([]);
    expect([...pairs.committed].filter((m) => !m.startsWith("multi-after-"))).toEqual([]);
    const connections = await appConnections(owner);
    expect(connections.pool).toBeLessThanOrEqual(POOL_MAX);
    expect(app.sdk.router.pool("main").gate.active).toBe(0);
    console.log(
      `[faults] ${POOL_MAX} terminated backends: 503s within ${Math.round(Math.max(...answers.map((a) => a.endedAt - killedAt)))} ms; ` +
        `reads p95 ${Math.round(
          percentile(
            samples.map((s) => s.ms),
            95,
          ),
        )} ms (${samples.length}); app connections ${JSON.stringify(connections)}; ` +
        `${failures.length} of ${3 * POOL_MAX} later writes failed`,
    );
    expect(failures, `requests after the kill failed; the app logged: ${refusals().slice(before).join("\n")}`).toEqual(
      [],
    );
  });
});
