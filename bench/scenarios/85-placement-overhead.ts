/**
 * What placement costs a request (issue #16's bench rows):
 *   router overhead    a tenant read through the router (`sdk.withTenant` + the module's handle: the
 *                      placement answered from memory, a transaction with the tenant set, the query)
 *                      against the same statements on a plain drizzle client over a plain postgres.js
 *                      pool of the same size and role: BEGIN, set_config, the SELECT, COMMIT.
 *   moved tenant read  an authorized HTTP read (session, permission check, a page of roles) of a
 *                      tenant placed on a second database against the same read of a tenant on main.
 * Both in rounds of adjacent 1 s loads in alternating order, compared by the median round (this
 * machine is shared: one long load each, minutes apart, moves by ±20 %).
 */
import { eq, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { createApp } from "../../src/app.js";
import { coreCatalog } from "../../src/core-modules.js";
import { moveTenant } from "../../src/db/tenant-move.js";
import { parseTopology } from "../../src/db/topology.js";
import { createSdk } from "../../src/index.js";
import { TEST_ONLY_SCRYPT } from "../../src/modules/auth/index.js";
import { roles } from "../../src/modules/permissions/index.js";
import { cookieHeader } from "../../src/testing.js";
import { DB_POOL_MAX, median } from "../harness.js";
import type { HttpResult, Row, Scenario } from "../types.js";

const ROUNDS = 15;
const ROUTER_TARGET = 1.03;
const MOVED_TARGET = 0.95;

/** Runs `op` from `concurrency` loops for `seconds`; operations per second. */
async function opsPerSecond(op: () => Promise<unknown>, seconds: number, concurrency = DB_POOL_MAX) {
  let done = 0;
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        await op();
        done++;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

/** "rounds 0.91–1.08, middle half 0.97–1.02". */
function spread(ratios: number[]): string {
  const sorted = [...ratios].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.round(q * (sorted.length - 1))]!.toFixed(2);
  return `rounds ${at(0)}–${at(1)}, middle half ${at(0.25)}–${at(0.75)}`;
}

const scenario: Scenario = async (ctx) => {
  const [mainDb, tenantDb] = [await ctx.freshDatabase(), await ctx.freshDatabase()];
  const topology = parseTopology({ databases: { main: { url: mainDb.url }, tenant_db: { url: tenantDb.url } } });
  // Production's router: `environment: "test"` (which the cheap password cost needs) would also turn on
  // the test suite's check for units that write to two databases, two more statements per moved read.
  const sdk = createSdk({
    topology,
    environment: "test",
    crossDatabaseWrites: "allow",
    auth: { passwordCost: TEST_ONLY_SCRYPT, rateLimit: false },
  });
  const rows: Row[] = [];
  const seconds = Math.min(ctx.seconds, 1);
  try {
    await sdk.seed();
    const email = `placement-${crypto.randomUUID()}@example.test`;
    const password = "correct horse battery staple";
    const user = await sdk.auth.createUser({ email, password, name: "Placement", emailVerified: true });
    const tenant = async (name: string) =>
      (await sdk.auth.api.createOrganization({
        body: { name, slug: `${name}-${crypto.randomUUID()}`, userId: user.id },
      }))!.id;
    const [home, moved] = [await tenant("home"), await tenant("moved")];
    for (const id of [home, moved]) {
      await sdk.permissions.createRole({ name: "editor", permissions: ["docs:write"] }, { tenant: id });
    }
    await moveTenant({ catalog: coreCatalog(), topology, tenantId: moved, to: "tenant_db" });

    // 1. Router overhead, in-process: the same statements through the router and on plain drizzle.
    const direct = postgres(mainDb.url, { max: DB_POOL_MAX, onnotice: () => {}, connection: { role: "sv_app" } });
    const plain = drizzle(direct);
    const query = (db: typeof plain) =>
      db.select({ id: roles.id, name: roles.name }).from(roles).where(eq(roles.tenantId, home)).limit(20);
    const viaRouter = () => sdk.withTenant(home, () => query(sdk.router.db("permissions") as unknown as typeof plain));
    const viaDrizzle = () =>
      plain.transaction(async (tx) => {
        await tx.execute(sql`select set_config('sv.tenant_id', ${home}, true)`);
        return query(tx as unknown as typeof plain);
      });
    try {
      const [a, b] = [await viaRouter(), await viaDrizzle()];
      if (a.length === 0 || a.length !== b.length)
        throw new Error(`router read ${a.length} roles, drizzle ${b.length}`);
      await opsPerSecond(viaRouter, 1);
      await opsPerSecond(viaDrizzle, 1);
      const ratios: number[] = [];
      const routerRates: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const order = round % 2 === 0 ? [viaRouter, viaDrizzle] : [viaDrizzle, viaRouter];
        const [first, second] = [await opsPerSecond(order[0]!, seconds), await opsPerSecond(order[1]!, seconds)];
        const [routerRate, drizzleRate] = round % 2 === 0 ? [first, second] : [second, first];
        routerRates.push(routerRate);
        ratios.push(drizzleRate / routerRate);
      }
      const cost = median(ratios);
      rows.push({
        scenario: "placement: router overhead vs direct drizzle",
        throughput: median(routerRates),
        unit: "ops/s",
        ratio: { against: "direct drizzle (time per read)", value: cost },
        target: `<= ${ROUTER_TARGET}x`,
        pass: cost <= ROUTER_TARGET,
        note: `begin, set_config(sv.tenant_id), select 20 roles, commit; ${DB_POOL_MAX} loops, pool ${DB_POOL_MAX}, sv_app; median of ${ROUNDS} rounds of ${seconds} s: ${spread(ratios)}`,
      });
    } finally {
      await direct.end({ timeout: 5 });
    }

    // 2. A moved tenant's authorized read over HTTP against an unmoved tenant's.
    const app = createApp(sdk, { logRequests: false });
    const signIn = await sdk.auth.api.signInEmail({ body: { email, password }, returnHeaders: true });
    const cookie = cookieHeader(signIn.headers);
    const server = await ctx.serve(app.fetch);
    const read = (tenantId: string) => ({
      url: `${server.url}/api/v1/permissions/roles`,
      headers: { cookie, "x-tenant-id": tenantId },
      connections: DB_POOL_MAX,
      seconds,
    });
    for (const id of [home, moved]) {
      const probe = await fetch(read(id).url, { headers: read(id).headers });
      if (probe.status !== 200) throw new Error(`the roles read answered ${probe.status} for ${id}`);
      await ctx.load({ ...read(id), seconds: 1 });
    }
    const pairs: { moved: HttpResult; home: HttpResult }[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      if (round % 2 === 0) {
        const h = await ctx.load(read(home));
        pairs.push({ home: h, moved: await ctx.load(read(moved)) });
      } else {
        const m = await ctx.load(read(moved));
        pairs.push({ moved: m, home: await ctx.load(read(home)) });
      }
    }
    const ratios = pairs.map((p) => p.moved.requestsPerSecond / p.home.requestsPerSecond);
    const middle = median(ratios);
    const result = pairs[ratios.indexOf(middle)]!.moved;
    const failures = pairs.reduce((n, p) => n + p.moved.errors + p.moved.non2xx + p.home.errors + p.home.non2xx, 0);
    rows.push({
      scenario: "placement: moved tenant's authorized read",
      throughput: result.requestsPerSecond,
      unit: "req/s",
      p50Ms: result.p50Ms,
      p99Ms: result.p99Ms,
      ratio: { against: "the same read of a tenant on main", value: middle },
      target: `>= ${MOVED_TARGET}x`,
      pass: middle >= MOVED_TARGET && failures === 0,
      note: `GET /api/v1/permissions/roles (session, roles:read, a page); tenant on a second database of the same server; ${DB_POOL_MAX} connections; median of ${ROUNDS} pairs of ${seconds} s: ${spread(ratios)}${failures ? `; ${failures} errors or non-2xx` : ""}`,
    });
  } finally {
    await sdk.close();
    await mainDb.drop();
    await tenantDb.drop();
  }
  return rows;
};

export default scenario;
