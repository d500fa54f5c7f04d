/**
 * Starting while a tenant database is down: a deploy during the outage. Tenant B lives on
 * `tenant_db`, a second cluster, which is stopped before the real server (`src/server.ts`, as
 * `npm start` runs it) and the real CLI start.
 *
 * - the server starts and is ready (the control plane is up), says which database it started
 *   without, answers B with 503 within 2 s, and serves B once tenant_db is back — no restart;
 * - `sv-sdk db:migrate` migrates main, reports tenant_db unreachable and exits 1, quickly;
 * - `sv-sdk migrate --wait=<s>` waits for tenant_db and migrates it once it is back (exit 0).
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { coreCatalog } from "../../src/core-modules.js";
import { moveTenant } from "../../src/db/tenant-move.js";
import { parseTopology } from "../../src/db/topology.js";
import { createSdk } from "../../src/index.js";
import { createTestTenant, createTestUser } from "../../src/testing.js";
import { POOL_MAX } from "./harness/app.js";
import { runCli, startCli } from "./harness/cli.js";
import { describe as outcome, isRetryable503, jsonOf, send, signIn } from "./harness/http.js";
import { waitFor } from "./harness/load.js";
import { Cleanup, sleep, startCluster, startServerProcess, type Cluster } from "./harness/processes.js";

const FAIL_FAST_MS = 2_000;
const RECOVERY_MS = 10_000;
/** The CLI's own start (tsx compiles on the fly) and a 3 s reachability check, on a busy machine. */
const CLI_MS = 20_000;

const cleanup = new Cleanup();
let root: string;
let main: Cluster;
let tenant: Cluster;
let topologyEnv: string;
let bob: { email: string; password: string };
let tenantB: string;

beforeAll(async () => {
  const faults = inject("faults");
  root = faults.root;
  [main, tenant] = await Promise.all([
    startCluster(root, faults.golden, "start-main", cleanup),
    startCluster(root, faults.golden, "start-tenant", cleanup),
  ]);
  const topology = { databases: { main: { url: main.url }, tenant_db: { url: tenant.url } } };
  // B, placed on tenant_db, set up in this process before the deploy.
  const sdk = createSdk({ topology, environment: "test", auth: { secret: randomUUID() + randomUUID() } });
  try {
    const user = await createTestUser(sdk);
    const b = await createTestTenant(sdk, user, "Tenant B");
    bob = { email: user.user.email, password: user.password };
    tenantB = b.tenant.id;
  } finally {
    await sdk.close();
  }
  await moveTenant({ catalog: coreCatalog(), topology: parseTopology(topology), tenantId: tenantB, to: "tenant_db" });
  topologyEnv = JSON.stringify({
    databases: {
      main: { url: main.url, pool: { max: POOL_MAX } },
      tenant_db: { url: tenant.url, pool: { max: POOL_MAX } },
    },
  });
  await tenant.stop();
}, 90_000);
afterAll(() => cleanup.run());

describe("a deploy while a tenant database is down", () => {
  it("the CLI migrates what it can, names the database it could not, and waits for it with --wait", async () => {
    const env = { DATABASE_TOPOLOGY: topologyEnv, DATA_DIR: `${root}/start-cli-data` };
    const skipped = await runCli(["db:migrate"], env, CLI_MS + 10_000);
    const said = `${skipped.stdout}\n${skipped.stderr}`;
    expect(skipped.timedOut, said).toBe(false);
    expect(skipped.code, said).toBe(1);
    expect(skipped.stdout).toMatch(/^main: up to date/m);
    expect(skipped.stdout).toMatch(/^tenant_db: unreachable \(ECONNREFUSED\), skipped/m);
    expect(skipped.stderr).toContain("not migrated: tenant_db");
    expect(skipped.ms).toBeLessThan(CLI_MS);

    const waiting = startCli(["migrate", "--wait=40"], env, 60_000);
    try {
      const said = await waitFor(async () => waiting.stderr().includes("waiting up to 40 s"), CLI_MS, 100);
      expect(said, waiting.stderr()).toBeDefined();
      await sleep(1_000);
      await tenant.start();
      const waited = await waiting.done;
      const told = `${waited.stdout}\n${waited.stderr}`;
      expect(waited.code, told).toBe(0);
      expect(waited.stderr).toContain("database 'tenant_db' is unreachable");
      expect(waited.stdout).toMatch(/^tenant_db: up to date/m);
    } finally {
      await waiting.done;
      await tenant.stop();
    }
  }, 90_000);

  it("the server starts without it, answers its tenant 503 fast, and serves it once it is back", async () => {
    const server = await startServerProcess(
      root,
      { DATABASE_TOPOLOGY: topologyEnv, DATA_DIR: `${root}/start-server-data` },
      cleanup,
    );
    expect(server.output()).toMatch(/unreachable/);
    const ready = await send(`${server.url}/ready`);
    expect(outcome(ready)).toBe("200");
    const states = jsonOf<{ databases: { name: string; state: string }[] }>(ready)!;
    expect(states.databases.find((d) => d.name === "tenant_db")?.state).toBe("unreachable");

    const origin = `http://localhost:${server.port}`;
    const account = await signIn(server.url, origin, bob.email, bob.password);
    const headers = { ...account.headers, "x-tenant-id": tenantB };
    const readRoles = () => send(`${server.url}/api/v1/permissions/roles?limit=5`, { headers, timeoutMs: 20_000 });
    for (let i = 0; i < 3; i++) {
      const answer = await readRoles();
      expect(isRetryable503(answer), outcome(answer)).toBe(true);
      expect(answer.ms).toBeLessThan(FAIL_FAST_MS);
    }

    await tenant.start();
    const recovered = await waitFor(async () => outcome(await readRoles()) === "200", RECOVERY_MS, 200);
    console.log(
      `[faults] start while down: B served ${recovered === undefined ? "never" : `${Math.round(recovered)} ms`} after tenant_db started`,
    );
    expect(recovered, server.output()).toBeDefined();
    expect(outcome(await send(`${server.url}/ready?strict=1`))).toBe("200");
    expect(server.alive()).toBe(true);
  }, 90_000);
});
