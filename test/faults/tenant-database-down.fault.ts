/**
 * Failure isolation — one tenant database down or frozen. Two clusters: `main` (the control plane,
 * tenant A) and `tenant_db` (tenant B, moved there). For each fault — the cluster stopped
 * (`pg_ctl stop`, fast) and frozen (SIGSTOP of every process) — requests fired after the fault show:
 *
 * - B's reads, writes and audit read each end within 2 s as a 503 problem document with Retry-After;
 * - A's reads, writes, audit read, `/api/v1/me/permissions` and a sign-up answer as usual (2xx, fast);
 * - a platform operator's audit read and export answer 200 with what main holds and name `tenant_db`
 *   as missing (`missingDatabases`, `Missing-Databases`);
 * - `/ready` stays 200 and lists tenant_db as unreachable; `/ready?strict=1` is 503;
 * - once the cluster is back (started, or SIGCONT) B is served again by itself, with no restart.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { coreCatalog } from "../../src/core-modules.js";
import { moveTenant } from "../../src/db/tenant-move.js";
import { parseTopology } from "../../src/db/topology.js";
import { createTestRole, createTestTenant, createTestUser } from "../../src/testing.js";
import { database, startApp, type RunningApp } from "./harness/app.js";
import { describe as outcome, isRetryable503, jsonOf, send, type Answer } from "./harness/http.js";
import { waitFor } from "./harness/load.js";
import { Cleanup, sleep, startCluster, type Cluster } from "./harness/processes.js";

/** What the issue asks of a tenant whose database is down or frozen. */
const FAIL_FAST_MS = 2_000;
/** The other tenant's requests, on a shared two-core machine: as quick as before the fault. */
const USUAL_MS = 1_000;
/**
 * A sign-up hashes a password at the real cost (about 100 ms of a core, 1-2 s on a busy shared
 * machine): it is held to twice the one measured before the fault, or this, whichever is more.
 */
const SIGN_UP_MS = 3_000;
/** How long B's requests keep being fired after the fault. */
const FAULT_WINDOW_MS = 4_000;
const RECOVERY_MS = 10_000;

const cleanup = new Cleanup();
let app: RunningApp;
let tenantCluster: Cluster;
let headersA: Record<string, string>;
let headersB: Record<string, string>;
let operator: Record<string, string>;

beforeAll(async () => {
  const { root, golden } = inject("faults");
  const [main, tenant] = await Promise.all([
    startCluster(root, golden, "iso-main", cleanup),
    startCluster(root, golden, "iso-tenant", cleanup),
  ]);
  tenantCluster = tenant;
  app = await startApp({ databases: { main: database(main.url), tenant_db: database(tenant.url) } }, cleanup);
  const ada = await createTestUser(app.sdk);
  const bob = await createTestUser(app.sdk);
  const a = await createTestTenant(app.sdk, ada, "Tenant A");
  const b = await createTestTenant(app.sdk, bob, "Tenant B");
  headersA = a.headers;
  headersB = b.headers;
  const ops = await createTestUser(app.sdk);
  await createTestRole(app.sdk, { permissions: ["audit:read"], assignTo: ops.user.id, tenant: null });
  operator = ops.headers;
  const owners = parseTopology({ databases: { main: { url: main.url }, tenant_db: { url: tenant.url } } });
  await moveTenant({ catalog: coreCatalog(), topology: owners, tenantId: b.tenant.id, to: "tenant_db" });
  // One event each side of the move, so both databases hold audit rows.
  expect(outcome(await createRole(headersB, "b-moved"))).toBe("201");
  expect(outcome(await createRole(headersA, "a-ready"))).toBe("201");
}, 90_000);
afterAll(() => cleanup.run());

const get = (path: string, headers: Record<string, string>) =>
  send(`${app.url}${path}`, { headers, timeoutMs: 20_000 });
const readRoles = (headers: Record<string, string>) => get("/api/v1/permissions/roles?limit=5", headers);
const readAudit = (headers: Record<string, string>) => get("/api/v1/audit/events?limit=5", headers);
const createRole = (headers: Record<string, string>, name: string) =>
  send(`${app.url}/api/v1/permissions/roles`, {
    method: "POST",
    headers,
    body: { name, permissions: ["docs:read"] },
    timeoutMs: 20_000,
  });
const signUp = () =>
  send(`${app.url}/api/auth/sign-up/email`, {
    method: "POST",
    headers: { origin: app.origin },
    body: { email: `new-${randomUUID()}@example.test`, password: "correct horse battery staple", name: "New" },
    timeoutMs: 20_000,
  });

const line = (kind: string, answer: Answer) => `${kind}: ${outcome(answer)} in ${Math.round(answer.ms)} ms`;

/** B's three kinds of request, fired one after another for `windowMs` from now. */
async function fireAtB(windowMs: number): Promise<{ kind: string; answer: Answer }[]> {
  const answers: { kind: string; answer: Answer }[] = [];
  const until = performance.now() + windowMs;
  for (let i = 0; performance.now() < until; i++) {
    const kind = ["B read", "B write", "B audit"][i % 3]!;
    const answer =
      kind === "B read"
        ? await readRoles(headersB)
        : kind === "B write"
          ? await createRole(headersB, `b-${i}-${randomUUID().slice(0, 6)}`)
          : await readAudit(headersB);
    answers.push({ kind, answer });
  }
  return answers;
}

/** Everything the issue asks while tenant_db is out, whatever the fault. */
async function checkIsolation(fault: string, signUpBefore: number): Promise<void> {
  // B first, from the first request after the fault: each a 503 to retry, within 2 s.
  const b = await fireAtB(FAULT_WINDOW_MS);
  const report = b.map((x) => line(x.kind, x.answer)).join("; ");
  const slowest = Math.max(...b.map((x) => x.answer.ms));
  console.log(
    `[faults] ${fault}, tenant B: ${b.length} requests, first ${line(b[0]!.kind, b[0]!.answer)}, slowest ${Math.round(slowest)} ms`,
  );
  expect(b.length).toBeGreaterThan(3);
  expect(
    b.filter((x) => !isRetryable503(x.answer) || x.answer.ms > FAIL_FAST_MS).map((x) => line(x.kind, x.answer)),
    report,
  ).toEqual([]);

  // A: reads, writes, its audit trail, its permissions, a sign-up — as usual.
  const a: [string, Answer][] = [];
  for (let i = 0; i < 3; i++) {
    a.push(["A read", await readRoles(headersA)]);
    a.push(["A write", await createRole(headersA, `a-${fault}-${i}`)]);
    a.push(["A audit", await readAudit(headersA)]);
    a.push(["A me", await get("/api/v1/me/permissions", headersA)]);
  }
  const signedUp = await signUp();
  const aReport = [...a.map(([k, x]) => line(k, x)), line("sign-up", signedUp)].join("; ");
  console.log(`[faults] ${fault}, tenant A: ${aReport}`);
  expect(
    a.filter(([, x]) => x.status < 200 || x.status >= 300 || x.ms > USUAL_MS).map(([k, x]) => line(k, x)),
    aReport,
  ).toEqual([]);
  expect(signedUp.status, aReport).toBe(200);
  expect(signedUp.ms, aReport).toBeLessThan(Math.max(SIGN_UP_MS, 2 * signUpBefore));
  // A's trail is read in full from main; tenant_db, where A never lived, is named as unread.
  const aAudit = jsonOf<{ events: unknown[]; missingDatabases?: string[] }>(a[2]![1])!;
  expect(aAudit.events.length).toBeGreaterThan(0);
  expect(aAudit.missingDatabases).toEqual(["tenant_db"]);

  // The platform operator: every tenant's events that main holds, tenant_db named as missing.
  const platform = await get("/api/v1/audit/events?scope=platform&limit=50", operator);
  expect(outcome(platform)).toBe("200");
  expect(platform.ms).toBeLessThan(USUAL_MS);
  const page = jsonOf<{ events: { tenantId: string | null }[]; missingDatabases?: string[] }>(platform)!;
  expect(page.missingDatabases).toEqual(["tenant_db"]);
  expect(platform.headers["missing-databases"]).toBe("tenant_db");
  expect(page.events.some((e) => e.tenantId === headersA["x-tenant-id"])).toBe(true);
  const exported = await get("/api/v1/audit/events/export?scope=platform", operator);
  expect(outcome(exported)).toBe("200");
  expect(exported.headers["missing-databases"]).toBe("tenant_db");
  expect(exported.body.trim().split("\n").length).toBeGreaterThan(0);

  // /ready: 200 with tenant_db's state; strict, 503.
  const ready = await get("/ready", {});
  expect(outcome(ready)).toBe("200");
  expect(ready.ms).toBeLessThan(FAIL_FAST_MS);
  const states = jsonOf<{ status: string; databases: { name: string; state: string; downSince?: string }[] }>(ready)!;
  expect(states.status).toBe("degraded");
  expect(states.databases.find((d) => d.name === "main")?.state).toBe("ready");
  const tenantDb = states.databases.find((d) => d.name === "tenant_db");
  expect(tenantDb?.state).toBe("unreachable");
  expect(tenantDb?.downSince).toBeDefined();
  const strict = await get("/ready?strict=1", {});
  expect(isRetryable503(strict) || strict.status === 503, outcome(strict)).toBe(true);
}

/** After the fault: B served again by itself (no restart), the platform read complete again. */
async function checkRecovery(fault: string): Promise<void> {
  const recovered = await waitFor(async () => outcome(await readRoles(headersB)) === "200", RECOVERY_MS, 200);
  console.log(
    `[faults] ${fault}: B served again ${recovered === undefined ? "never" : `${Math.round(recovered)} ms`} after the database was back`,
  );
  expect(recovered).toBeDefined();
  expect(outcome(await createRole(headersB, `b-after-${randomUUID().slice(0, 6)}`))).toBe("201");
  expect(outcome(await readAudit(headersB))).toBe("200");
  const platform = await get("/api/v1/audit/events?scope=platform&limit=5", operator);
  expect(jsonOf<{ missingDatabases?: string[] }>(platform)?.missingDatabases).toBeUndefined();
  expect(platform.headers["missing-databases"]).toBeUndefined();
  expect(outcome(await get("/ready?strict=1", {}))).toBe("200");
}

describe("a tenant database down or frozen costs only its tenants", () => {
  it("stopped (pg_ctl stop): B 503 within 2 s, A and the platform unaffected, B back once it starts", async () => {
    expect(outcome(await readRoles(headersB))).toBe("200");
    const before = await signUp();
    expect(outcome(before)).toBe("200");
    expect(outcome(await get("/ready?strict=1", {}))).toBe("200");
    await tenantCluster.stop();
    try {
      await checkIsolation("stopped", before.ms);
    } finally {
      await tenantCluster.start();
    }
    await checkRecovery("stopped");
  });

  it("frozen (SIGSTOP): B 503 within 2 s, A and the platform unaffected, B back after SIGCONT", async () => {
    expect(await waitFor(async () => outcome(await readRoles(headersB)) === "200", RECOVERY_MS, 200)).toBeDefined();
    const before = await signUp();
    expect(outcome(before)).toBe("200");
    tenantCluster.freeze();
    try {
      await checkIsolation("frozen", before.ms);
    } finally {
      tenantCluster.thaw();
    }
    await sleep(100);
    await checkRecovery("frozen");
  });
});
