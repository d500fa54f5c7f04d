/**
 * Two rows of the growth bench (scenarios/60-growth.ts) that need more than the scenario's own
 * loop: the uncached permission check (a router and permissions module of their own, queries
 * counted) and the email dispatcher draining a backlog. Both run at the sizes up to 100k.
 */
import { createHash } from "node:crypto";
import type postgres from "postgres";
import { createCoreRouter } from "../src/core-modules.js";
import { createModuleContext, moduleOn } from "../src/db/module-context.js";
import { singleDatabase } from "../src/db/topology.js";
import type { Sdk } from "../src/index.js";
import { silentLogger } from "../src/logger.js";
import { auditModule } from "../src/modules/audit/index.js";
import type { startFakeResend } from "../src/modules/email/testing/fake-resend.js";
import { permissionsModule } from "../src/modules/permissions/index.js";
import { warmPlacements } from "./placements.js";
import { planShapes } from "./plans.js";
import type { BenchContext, Row } from "./types.js";

/** Generated tenants (organizations): `md5('org-' || k)::uuid`. */
export const TENANTS = 1000;
export const DISPATCH_TARGET = 5000;

export const label = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`);
export const seconds = (since: number) => (performance.now() - since) / 1000;
/** Whether a plan reads a whole table of `tables` (audit_logs: any of its partitions). */
export const scansWhole = (shapes: string[], tables: string[]) =>
  shapes.some((shape) =>
    tables.some((t) => new RegExp(`Seq Scan on ${t}\\b`).test(shape.replace(/audit_logs_<partition>/g, "audit_logs"))),
  );

type StatementsOf = (fn: () => Promise<unknown>) => Promise<string[]>;

/** One uncached can() per generated user with as many assignments as rows: a fill, then reads. */
export async function permissionCheckRow(input: {
  ctx: BenchContext;
  databaseUrl: string;
  sdk: Sdk;
  owner: postgres.Sql;
  adminId: string;
  statementsOf: StatementsOf;
  size: number;
  at: string;
}): Promise<Row> {
  const { ctx, databaseUrl, sdk, owner, adminId, statementsOf, size, at } = input;
  // Uncached permission checks: the in-process cache off, queries counted.
  let queries = 0;
  const counting = createCoreRouter(singleDatabase(databaseUrl), { onQuery: () => queries++ });
  const uncached = permissionsModule.create(createModuleContext(counting, permissionsModule, silentLogger), {
    audit: moduleOn(counting, auditModule, {}, silentLogger),
    cache: { enabled: false },
  });
  try {
    await uncached.can(adminId, "warm:up"); // a new connection reads the server's array types once
    await warmPlacements(counting, md5Uuid("org-0")); // the steady state: placements held in memory
    const users = Array.from({ length: 200 }, (_, i) => Math.floor(((i + 0.5) * size) / 200));
    const check = (k: number) =>
      uncached.can(md5Uuid(`user-${k}`), "audit:read", { tenant: md5Uuid(`org-${k % TENANTS}`) });
    queries = 0;
    let i = 0;
    let denied = 0;
    const fill = await ctx.measure(
      async () => {
        if (!(await check(users[i++ % users.length]!))) denied++;
      },
      { iterations: users.length },
    );
    const fillQueries = queries / users.length;
    queries = 0;
    const read = await ctx.measure(
      async () => {
        if (!(await check(users[i++ % users.length]!))) denied++;
      },
      { iterations: users.length * 5 },
    );
    const readQueries = queries / (users.length * 5);
    const checkStatements = await statementsOf(() =>
      sdk.permissions.permissionsOf(md5Uuid(`user-${size - 1}`), {
        tenant: md5Uuid(`org-${(size - 1) % TENANTS}`),
      }),
    );
    const inner = await functionStatements(owner);
    const plans = await planShapes(owner, [...checkStatements, ...inner]);
    return {
      scenario: `growth: uncached permission check ${at} assignments`,
      throughput: read.opsPerSecond,
      unit: "checks/s",
      p50Ms: read.p50Ms,
      p99Ms: read.p99Ms,
      target: "1 query, no Seq Scan",
      pass:
        fillQueries === 1 &&
        readQueries === 1 &&
        denied === 0 &&
        !scansWhole(plans, ["user_roles", "permission_cache", "users"]),
      note: [
        `permission_cache read: ${readQueries} queries a check; fill (first check of a user): ${fillQueries} queries, ${Math.round(fill.opsPerSecond)} checks/s, p99 ${fill.p99Ms.toFixed(2)} ms`,
        denied ? `${denied} checks denied (expected allowed)` : "",
        `plans: ${plans.join(" | ")}`,
      ]
        .filter(Boolean)
        .join("; "),
    };
  } finally {
    await uncached.stop();
    await counting.close(5);
  }
}

/** The dispatcher as `npm start` runs it, draining the due backlog through the Resend stand-in. */
export async function emailDispatchRow(input: {
  sdk: Sdk;
  owner: postgres.Sql;
  fake: Awaited<ReturnType<typeof startFakeResend>>;
  statementsOf: StatementsOf;
}): Promise<Row> {
  const { sdk, owner, fake, statementsOf } = input;
  // The dispatcher as npm start runs it (defaults), draining the backlog. Counted before and
  // after; while it drains, the poll only asks whether any row is left: counting the backlog
  // every 100 ms took 8 s of the database's CPU in a 100k drain, the dispatcher's statements 10 s.
  fake.reset();
  const due = async () =>
    Number(
      (
        await owner<
          { n: string }[]
        >`select count(*)::text as n from email.email_sends where status in ('queued', 'sending')`
      )[0]!.n,
    );
  const anyLeft = async () =>
    (
      await owner<
        { left: boolean }[]
      >`select exists (select from email.email_sends where status in ('queued', 'sending')) as left`
    )[0]!.left;
  const waiting = await due();
  const dispatcher = sdk.email.createDispatcher();
  const claimStatements = await statementsOf(async () => {
    await dispatcher.start();
    await new Promise((r) => setTimeout(r, 300));
  });
  const t0 = performance.now();
  // Bounded: at half the target rate the row has failed anyway, so it stops waiting there.
  const limitSeconds = Math.max(20, (2 * waiting) / DISPATCH_TARGET);
  const deadline = t0 + limitSeconds * 1000;
  while ((await anyLeft()) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const drainSeconds = seconds(t0) + 0.3;
  await dispatcher.stop();
  const left = await due();
  const claimPlans = await planShapes(owner, claimStatements, "*");
  const sent = waiting - left;
  const rate = sent / drainSeconds;
  const claimPlan = claimPlans.find((plan) => plan.includes("LockRows")) ?? "";
  return {
    scenario: `growth: email dispatch, ${label(waiting)} backlog`,
    throughput: rate,
    unit: "emails/s",
    target: `>= ${DISPATCH_TARGET.toLocaleString("en-US")} emails/s, claim off the index`,
    pass:
      rate >= DISPATCH_TARGET &&
      left === 0 &&
      fake.delivered.length >= sent &&
      /LockRows > Index Scan using email_sends_claim_idx/.test(claimPlan) &&
      !scansWhole(claimPlans, ["email_sends"]),
    note: [
      `${sent}/${waiting} sent in ${drainSeconds.toFixed(1)} s, ${fake.delivered.length} delivered in ${fake.requests.length} requests; one next_attempt_at; dispatcher defaults (as npm start)`,
      left > 0 ? `stopped after ${limitSeconds} s with ${left} still due` : "",
      `plans: ${claimPlans.slice(0, 3).join(" | ")}`,
    ]
      .filter(Boolean)
      .join("; "),
  };
}

/** PostgreSQL's md5(text)::uuid, which the generated ids are. */
export function md5Uuid(text: string): string {
  const hex = createHash("md5").update(text).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The statements inside the permission check's function (drizzle/0005), read from the catalog so
 * they are the installed ones: the permission_cache lookup of cached_permissions and the body of
 * effective_permissions, with their arguments as parameters.
 */
async function functionStatements(owner: postgres.Sql): Promise<string[]> {
  const found = await owner<{ name: string; src: string }[]>`
    select proname as name, prosrc as src from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'permissions' and proname in ('cached_permissions', 'effective_permissions')`;
  const asParameters = (text: string) => text.replace(/\bp_user\b/g, "$1::uuid").replace(/\bp_tenant\b/g, "$2::uuid");
  const statements: string[] = [];
  for (const { name, src } of found) {
    if (name === "effective_permissions") statements.push(asParameters(src.trim().replace(/;\s*$/, "")));
    const lookup = /SELECT\s+c\.permissions\s+INTO\s+result\s+(FROM[\s\S]*?);/i.exec(src);
    if (name === "cached_permissions" && lookup) statements.push(asParameters(`SELECT c.permissions ${lookup[1]}`));
  }
  return statements;
}
