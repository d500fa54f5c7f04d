/**
 * Scenario 3 — a frozen database. Two databases on two clusters: `main` (the control plane and
 * tenant A) and `tenant_db` (tenant B, moved there with moveTenant). SIGSTOP freezes every process of
 * tenant_db's cluster — it accepts TCP connections into its backlog and answers nothing, as a hung
 * host or a stalled disk does. B's requests end by their deadline (503, Retry-After); A's keep
 * answering quickly (p95 under 1 s); after SIGCONT B is served again within 10 s, and neither pool
 * holds more connections than its size.
 */
import { coreCatalog } from "../../src/core-modules.js";
import type postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { moveTenant } from "../../src/db/tenant-move.js";
import { parseTopology } from "../../src/db/topology.js";
import { createTestTenant, createTestUser } from "../../src/testing.js";
import { appConnections, database, ownerSql, POOL_MAX, startApp, type RunningApp } from "./harness/app.js";
import { describe as outcome, isRetryable503, send } from "./harness/http.js";
import { percentile, runLoad, tally, waitFor, type Sample } from "./harness/load.js";
import { Cleanup, sleep, startCluster, type Cluster } from "./harness/processes.js";

/** The app's request deadline (createApp's default). */
const REQUEST_DEADLINE_MS = 10_000;
/** Scheduling slack on a shared two-core machine. */
const SLACK_MS = 1_500;
/** The bound on the other tenant's p95 during the freeze. */
const OTHER_TENANT_P95_MS = 1_000;
/** Long enough for B's requests to run into their deadline more than once. */
const FREEZE_MS = 12_000;
/**
 * B's clients, each retrying as soon as it is answered: twice the pool's size, so B's waiting
 * requests could hold every connection of main (each holds one there while it waits on tenant_db).
 */
const FROZEN_TENANT_CLIENTS = 2 * POOL_MAX;
const RECOVERY_MS = 10_000;

const cleanup = new Cleanup();
let app: RunningApp;
let tenantCluster: Cluster;
let mainOwner: postgres.Sql;
let tenantOwner: postgres.Sql;
let headersA: Record<string, string>;
let headersB: Record<string, string>;

beforeAll(async () => {
  const { root, golden } = inject("faults");
  const [main, tenant] = await Promise.all([
    startCluster(root, golden, "main", cleanup),
    startCluster(root, golden, "tenant", cleanup),
  ]);
  tenantCluster = tenant;
  mainOwner = ownerSql(main.url, cleanup);
  tenantOwner = ownerSql(tenant.url, cleanup);
  app = await startApp({ databases: { main: database(main.url), tenant_db: database(tenant.url) } }, cleanup);
  const ada = await createTestUser(app.sdk);
  const a = await createTestTenant(app.sdk, ada, "Tenant A");
  const b = await createTestTenant(app.sdk, ada, "Tenant B");
  headersA = a.headers;
  headersB = b.headers;
  const owners = parseTopology({ databases: { main: { url: main.url }, tenant_db: { url: tenant.url } } });
  await moveTenant({ catalog: coreCatalog(), topology: owners, tenantId: b.tenant.id, to: "tenant_db" });
}, 90_000);
afterAll(() => cleanup.run());

const readRoles = (headers: Record<string, string>) =>
  send(`${app.url}/api/v1/permissions/roles?limit=5`, { headers, timeoutMs: REQUEST_DEADLINE_MS + 10_000 });
const createRole = (headers: Record<string, string>, name: string) =>
  send(`${app.url}/api/v1/permissions/roles`, {
    method: "POST",
    headers,
    body: { name, permissions: ["docs:read"] },
    timeoutMs: REQUEST_DEADLINE_MS + 10_000,
  });

describe("tenant B's database frozen (SIGSTOP)", () => {
  it("ends B's requests by their deadline with 503, keeps A's fast, and serves B again after SIGCONT", async () => {
    expect(outcome(await readRoles(headersA))).toBe("200");
    expect(outcome(await readRoles(headersB))).toBe("200");
    expect(outcome(await createRole(headersB, "b-before"))).toBe("201");

    // A's latency with nothing frozen, for the report.
    const baseline = runLoad(cleanup, 2, async (client, i) =>
      client === 0
        ? { kind: "A read", answer: await readRoles(headersA) }
        : { kind: "A write", answer: await createRole(headersA, `a-base-${i}`) },
    );
    await sleep(1_500);
    const p95Baseline = percentile(
      (await baseline.stop()).map((s) => s.ms),
      95,
    );

    const frozenAt = performance.now();
    const frozen = tenantCluster.freeze();
    expect(frozen.length).toBeGreaterThan(1);
    let stopLoad = false;
    let thawedAt = Number.POSITIVE_INFINITY;
    // A: a reader and a writer, back to back. B: clients that retry as soon as they are answered.
    const loadA = runLoad(cleanup, 2, async (client, i) =>
      client === 0
        ? { kind: "A read", answer: await readRoles(headersA) }
        : { kind: "A write", answer: await createRole(headersA, `a-${i}`) },
    );
    const loadB = runLoad(cleanup, FROZEN_TENANT_CLIENTS, async (client, i) => {
      if (stopLoad) return undefined;
      return client === 0
        ? { kind: "B write", answer: await createRole(headersB, `b-${i}`) }
        : { kind: "B read", answer: await readRoles(headersB) };
    });
    try {
      await sleep(FREEZE_MS);
    } finally {
      tenantCluster.thaw();
      thawedAt = performance.now();
    }
    const recovered = await waitFor(async () => outcome(await readRoles(headersB)) === "200", RECOVERY_MS, 200);
    stopLoad = true;
    const [samplesA, samplesB] = await Promise.all([loadA.stop(), loadB.stop()]);

    const duringFreeze = (s: Sample) => s.startedAt >= frozenAt && s.endedAt <= thawedAt;
    const a = samplesA.filter(duringFreeze);
    const b = samplesB.filter((s) => s.startedAt < thawedAt);
    const p95A = percentile(
      a.map((s) => s.ms),
      95,
    );
    const summary =
      `A before the freeze: p95 ${Math.round(p95Baseline)} ms; A during the freeze: ${a.length} requests, p95 ${Math.round(p95A)} ms, max ${Math.round(Math.max(...a.map((s) => s.ms)))} ms, ` +
      `${JSON.stringify(tally(a, outcome))}; B: ${JSON.stringify(tally(b, outcome))}, longest ${Math.round(Math.max(...b.map((s) => s.ms)))} ms; ` +
      `B served again ${recovered === undefined ? "never (10 s)" : `${Math.round(recovered)} ms`} after SIGCONT`;
    console.log(`[faults] frozen database: ${summary}`);

    // B: every request answered while frozen was a 503 to retry; none outlived its deadline (one that
    // was still waiting at SIGCONT may have been served).
    const answeredFrozen = b.filter(duringFreeze);
    expect(answeredFrozen.length).toBeGreaterThan(0);
    expect(
      answeredFrozen.filter((s) => !isRetryable503(s)).map((s) => `${s.kind} ${outcome(s)}`),
      summary,
    ).toEqual([]);
    expect(
      b.filter((s) => s.status !== 200 && s.status !== 201 && !isRetryable503(s)).map((s) => `${s.kind} ${outcome(s)}`),
      summary,
    ).toEqual([]);
    expect(Math.max(...b.map((s) => s.ms)), summary).toBeLessThan(REQUEST_DEADLINE_MS + SLACK_MS);
    // A: unaffected — every request answered, and quickly.
    expect(a.length, summary).toBeGreaterThan(10);
    expect(
      a.filter((s) => s.status >= 300).map((s) => `${s.kind} ${outcome(s)}`),
      summary,
    ).toEqual([]);
    expect(p95A, summary).toBeLessThan(OTHER_TENANT_P95_MS);
    // After SIGCONT: B is served again, and no pool holds more than its size.
    expect(recovered, summary).toBeDefined();
    const settled = await waitFor(async () => {
      const [m, t] = await Promise.all([appConnections(mainOwner), appConnections(tenantOwner)]);
      return m.pool <= POOL_MAX && t.pool <= POOL_MAX;
    }, 5_000);
    expect(
      settled,
      `connections: main ${JSON.stringify(await appConnections(mainOwner))}, tenant_db ${JSON.stringify(await appConnections(tenantOwner))}`,
    ).toBeDefined();
    expect(outcome(await createRole(headersB, "b-after"))).toBe("201");
    expect(outcome(await readRoles(headersA))).toBe("200");
  });
});
