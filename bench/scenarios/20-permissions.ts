/**
 * Permissions: cached checks in-process, the query cost of an uncached check, and an authorized read
 * endpoint (session from the cookie cache + requirePermission + one query) against the one-query
 * baseline.
 */
import { createCoreRouter } from "../../src/core-modules.js";
import { singleDatabase } from "../../src/db/topology.js";
import { createApp } from "../../src/app.js";
import { createSdk } from "../../src/index.js";
import { auditModule } from "../../src/modules/audit/index.js";
import { TEST_ONLY_SCRYPT } from "../../src/modules/auth/index.js";
import { warmPlacements } from "../placements.js";
import { createModuleContext, moduleOn } from "../../src/db/module-context.js";
import { silentLogger } from "../../src/logger.js";
import { permissionsModule } from "../../src/modules/permissions/index.js";
import { organizations } from "../../src/modules/auth/index.js";
import { baselinePool, DB_POOL_MAX, dbQueryApp, median } from "../harness.js";
import { cookieHeader } from "../../src/testing.js";
import type { HttpResult, Row, Scenario } from "../types.js";

const CACHED_TARGET = 1_000_000;
const ENDPOINT_TARGET = 0.8;
/**
 * Endpoint/baseline pairs measured alternately; the row reports the median pair. Many short pairs
 * rather than a few long ones: the two loads of a pair are a second apart, so they share the
 * machine's state, and on this shared machine a burst of another tenant's load that lands on one
 * load of a pair moves that pair by up to ±30 %; the median of 41 pairs is moved by few of them.
 * Measured on the same code: medians of 9 pairs of 3 s (a process started per load) read 0.78–0.88
 * across runs; medians of 41 pairs of 1 s read 0.82–0.88 across nine runs, full runs 0.82–0.85.
 */
const ROUNDS = 41;
const PAIR_LOAD_SECONDS = 1;
/** The endpoint without the check, once, for its own row. */
const SESSION_ONLY_SECONDS = 3;

/** "pairs 0.62–1.13, middle half 0.80–0.90": how far the pairs scatter around their median. */
function spread(ratios: number[]): string {
  const sorted = [...ratios].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.round(q * (sorted.length - 1))]!.toFixed(2);
  return `pairs ${at(0)}–${at(1)}, middle half ${at(0.25)}–${at(0.75)}`;
}

const scenario: Scenario = async (ctx) => {
  const database = await ctx.freshDatabase();
  const sdk = createSdk({
    databaseUrl: database.url,
    environment: "test",
    auth: { passwordCost: TEST_ONLY_SCRYPT, rateLimit: false },
  });
  const rows: Row[] = [];
  try {
    const tenantId = crypto.randomUUID();
    const email = `bench-${tenantId}@example.test`;
    const password = "correct horse battery staple";
    const user = await sdk.auth.createUser({ email, password, name: "Bench", emailVerified: true });
    await sdk.transaction(async () => {
      await sdk.router
        .db("auth")
        .insert(organizations)
        .values({ id: tenantId, name: "Bench", slug: `bench-${tenantId}` });
    });
    await sdk.permissions.assignRole(user.id, "auditor");
    await sdk.permissions.assignRole(user.id, "admin", { tenant: tenantId });
    await sdk.permissions.ready();

    // 1. Cached checks, in-process: a tight loop of awaited checks (no per-call timing overhead).
    const check = () => sdk.permissions.can(user.id, "audit:read", { tenant: tenantId });
    if (!(await check())) throw new Error("the bench user should hold audit:read");
    for (let i = 0; i < 200_000; i++) await check(); // JIT warm-up
    let checks = 0;
    const started = performance.now();
    const deadline = started + Math.min(ctx.seconds, 3) * 1000;
    while (performance.now() < deadline) {
      for (let i = 0; i < 10_000; i++) await check();
      checks += 10_000;
    }
    const cachedPerSecond = checks / ((performance.now() - started) / 1000);
    rows.push({
      scenario: "permissions: cached can() in-process",
      throughput: cachedPerSecond,
      unit: "checks/s",
      target: ">= 1,000,000 checks/s",
      pass: cachedPerSecond >= CACHED_TARGET,
      note: "sequential awaited can(user, perm, { tenant }) on one hot entry",
    });

    // 2. An uncached check: queries counted on a router with a query hook, in-process cache off.
    let queries = 0;
    const counting = createCoreRouter(singleDatabase(database.url), { onQuery: () => queries++ });
    const uncached = permissionsModule.create(createModuleContext(counting, permissionsModule, silentLogger), {
      audit: moduleOn(counting, auditModule, {}, silentLogger),
      cache: { enabled: false },
    });
    try {
      await uncached.can(user.id, "warm:up"); // a new connection reads the server's array types once
      await warmPlacements(counting, tenantId); // the steady state: placements held in memory
      const counts: number[] = [];
      for (const [permission, tenant] of [
        ["audit:read", tenantId],
        ["roles:write", tenantId],
        ["audit:read", null],
      ] as const) {
        const before = queries;
        await uncached.can(user.id, permission, { tenant });
        counts.push(queries - before);
      }
      const worst = Math.max(...counts);
      rows.push({
        scenario: "permissions: uncached check, queries",
        throughput: worst,
        unit: "queries",
        target: "= 1 query",
        pass: counts.every((n) => n === 1),
        note: `per check: ${counts.join(", ")} (permission_cache read or fill, one round trip)`,
      });
    } finally {
      await uncached.stop();
      await counting.close(5);
    }

    // 3. Authorized read endpoint: session (cookie cache) + requirePermission (cached) + one query.
    const app = createApp(sdk, { logRequests: false });
    const { sql } = sdk.router.pool("main");
    app.get("/api/v1/bench/read", sdk.permissions.requirePermission("audit:read"), async (c) => {
      const [row] = await sql<{ one: number }[]>`select 1 as one`;
      return c.json({ one: row!.one });
    });
    // The same endpoint without the permission check: isolates what the check costs from the session.
    app.get("/api/v1/bench/session-only", async (c) => {
      const [row] = await sql<{ one: number }[]>`select 1 as one`;
      return c.json({ one: row!.one });
    });
    const signIn = await sdk.auth.api.signInEmail({ body: { email, password }, returnHeaders: true });
    const cookie = cookieHeader(signIn.headers);
    const probe = await app.request("/api/v1/bench/read", { headers: { cookie } });
    const sessionNote = probe.status === 200 ? "" : `probe answered ${probe.status}`;
    const server = await ctx.serve(app.fetch);
    // The one-query baseline again, served from this process and measured alternately with the
    // endpoint: the start-of-run baseline is minutes older, and on this shared machine the same
    // load swings ±15 % from one minute to the next. Adjacent pairs share the machine's state.
    const baselineSql = baselinePool(database.url);
    const baseline = await ctx.serve(dbQueryApp(baselineSql).fetch);
    try {
      const headers = { cookie };
      const seconds = Math.min(ctx.seconds, PAIR_LOAD_SECONDS);
      const endpoint = { url: `${server.url}/api/v1/bench/read`, headers, connections: DB_POOL_MAX, seconds };
      const oneQuery = { url: baseline.url, connections: DB_POOL_MAX, seconds };
      await ctx.load({ ...endpoint, seconds: 1 });
      await ctx.load({ ...oneQuery, seconds: 1 });
      const pairs: { endpoint: HttpResult; baseline: HttpResult }[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        // ABBAABAB…: neither side always goes first.
        if (round % 2 === 0) {
          const b = await ctx.load(oneQuery);
          pairs.push({ baseline: b, endpoint: await ctx.load(endpoint) });
        } else {
          const e = await ctx.load(endpoint);
          pairs.push({ endpoint: e, baseline: await ctx.load(oneQuery) });
        }
      }
      const ratios = pairs.map((p) => p.endpoint.requestsPerSecond / p.baseline.requestsPerSecond);
      const middle = median(ratios);
      const result = pairs[ratios.indexOf(middle)]!.endpoint;
      const failures = pairs.reduce((n, p) => n + p.endpoint.errors + p.endpoint.non2xx, 0);
      const baselineMedian = median(pairs.map((p) => p.baseline.requestsPerSecond));
      const sessionOnly = await ctx.load({
        url: `${server.url}/api/v1/bench/session-only`,
        headers,
        connections: DB_POOL_MAX,
        seconds: Math.min(ctx.seconds, SESSION_ONLY_SECONDS),
      });
      rows.push({
        scenario: "permissions: authorized read endpoint",
        throughput: result.requestsPerSecond,
        unit: "req/s",
        p50Ms: result.p50Ms,
        p99Ms: result.p99Ms,
        ratio: { against: "db-query", value: middle },
        target: ">= 0.8x db-query",
        pass: middle >= ENDPOINT_TARGET && failures === 0,
        note: [
          "session cookie cache + requirePermission(audit:read) + select 1; full createApp middleware stack",
          `${DB_POOL_MAX} connections`,
          `median of ${ROUNDS} pairs of ${seconds} s loads, the one-query baseline run alternately in this process: ${spread(ratios)}`,
          `against the start-of-run baseline ${(result.requestsPerSecond / ctx.baselines.dbQuery.requestsPerSecond).toFixed(2)}x`,
          sessionNote,
          failures > 0 ? `${failures} errors or non-2xx` : "",
        ]
          .filter(Boolean)
          .join("; "),
      });
      rows.push({
        scenario: "permissions: same endpoint without the check",
        throughput: sessionOnly.requestsPerSecond,
        unit: "req/s",
        p50Ms: sessionOnly.p50Ms,
        p99Ms: sessionOnly.p99Ms,
        ratio: { against: "db-query", value: sessionOnly.requestsPerSecond / baselineMedian },
        note: `session + select 1, against the median interleaved baseline (${Math.round(baselineMedian)} req/s): what the session and middleware stack cost without the check`,
      });
    } finally {
      await baseline.close();
      await baselineSql.end({ timeout: 5 });
      await server.close();
    }
  } finally {
    await sdk.close();
    await database.drop();
  }
  return rows;
};

export default scenario;
