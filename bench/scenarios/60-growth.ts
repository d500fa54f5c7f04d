/**
 * Cost as data grows: the same operations at 10k, 100k and 1M rows (BENCH_GROWTH_MAX caps the
 * largest; BENCH_QUICK stops at 100k), with the data generated in the database with
 * `generate_series` as the owner — through the tables' constraints and triggers, in monthly audit
 * partitions created first, never through the API. At each size:
 *   audit page      GET /api/v1/audit/events?action=role.&limit=20 in a tenant: p50/p99 over HTTP,
 *                   target flat from the smallest size (p50 <= 1.5x) with no sequential scan
 *   audit export    GET /api/v1/audit/events/export (platform scope, NDJSON) read for up to 10 s: MB/s
 *   audit:verify    rows/s of sdk.audit.verify() over everything, sealed first (seal time in the note)
 *   sign-in         signInEmail among as many users as rows (their hashes at the test cost, so the
 *                   lookups, not scrypt, are timed): target no sequential scan of a growing table
 * and up to 100k (the sizes these targets are set for; 1M of each would double the run's length):
 *   permission check  one uncached can() per user with as many assignments as rows (a fill of
 *                   permission_cache, then its read): target one query, no sequential scan
 *   email dispatch  the dispatcher as `npm start` runs it (its defaults) draining a backlog of as
 *                   many due rows sharing one next_attempt_at (what one transaction enqueueing
 *                   them all leaves), through the Resend SDK to the local stand-in: target
 *                   >= 5,000 emails/s, and the claim never reads the whole backlog
 * Each row's note gives the plan shape of the statements the operation ran (bench/plans.ts). A
 * sequential scan fails a row only on a table that grows with the data: on a table of a few rows
 * (built-in roles, tenant placements) it is the planner's right choice.
 */
import postgres from "postgres";
import { createApp } from "../../src/app.js";
import { createSdk } from "../../src/index.js";
import { hashPassword, TEST_ONLY_SCRYPT } from "../../src/modules/auth/index.js";
import { startFakeResend } from "../../src/modules/email/testing/fake-resend.js";
import { cookieHeader } from "../../src/testing.js";
import { emailDispatchRow, label, md5Uuid, permissionCheckRow, scansWhole, seconds, TENANTS } from "../growth-rows.js";
import { planShapes } from "../plans.js";
import type { Row, Scenario } from "../types.js";

const SIZES = [10_000, 100_000, 1_000_000];
/** Assignments and the email backlog stop here. */
const SECONDARY_MAX = 100_000;
/** Audit rows are spread over this many tenants (the bench tenant is one of them). */
const AUDIT_TENANTS = 100;
const AUDIT_SPAN_DAYS = 60;
const BATCH = 100_000;
/** Assignments per statement: the user_roles trigger takes one advisory lock per user in its transaction. */
const ASSIGNMENT_BATCH = 5000;
const EXPORT_SECONDS = 10;
const PAGE_FLAT = 1.5;
const PASSWORD = "correct horse battery staple";

function growthMax(quick: boolean): number {
  const raw = process.env.BENCH_GROWTH_MAX;
  if (raw === undefined || raw === "") return quick ? 100_000 : 1_000_000;
  const max = Number(raw);
  if (!Number.isInteger(max) || max < SIZES[0]!)
    throw new Error(`BENCH_GROWTH_MAX must be an integer >= ${SIZES[0]}, got '${raw}'`);
  return max;
}

/** The full run at 1M rows takes several minutes on 2 cores; give it room, bounded. */
export const timeoutMs = 20 * 60_000;

/** An error and what it wraps, with SQLSTATE and details where they are known: "busy (57014) <- …". */
function causes(error: unknown): string {
  const parts: string[] = [];
  for (
    let e = error as { message?: string; code?: string; details?: unknown; cause?: unknown } | undefined;
    e;
    e = e.cause as typeof e
  ) {
    parts.push(
      `${e.message ?? String(e)}${e.code ? ` (${e.code})` : ""}${e.details ? ` ${JSON.stringify(e.details)}` : ""}`,
    );
  }
  return parts.join(" <- ");
}

const scenario: Scenario = async (ctx) => {
  const sizes = SIZES.filter((s) => s <= growthMax(ctx.quick));
  const database = await ctx.freshDatabase();
  const owner = postgres(database.url, { max: 1, onnotice: () => {} });
  const fake = await startFakeResend();
  let capture: string[] | undefined;
  const sdk = createSdk({
    databaseUrl: database.url,
    environment: "test",
    onQuery: (_database, query) => capture?.push(query),
    auth: { passwordCost: TEST_ONLY_SCRYPT, rateLimit: false },
    email: {
      resendApiKey: "re_bench",
      resendBaseUrl: fake.url,
      unsubscribeSecret: "g".repeat(32),
      from: "Bench <bench@example.test>",
    },
  });
  /** The statements `fn` runs, for their plans. */
  const statementsOf = async (fn: () => Promise<unknown>) => {
    capture = [];
    try {
      await fn();
      return capture;
    } finally {
      capture = undefined;
    }
  };
  const rows: Row[] = [];
  const generation: string[] = [];
  let generationTotal = 0;
  try {
    // The people who read: a tenant admin (audit:read in the bench tenant) and a platform auditor.
    const admin = await sdk.auth.createUser({
      email: `admin-${crypto.randomUUID()}@example.test`,
      password: PASSWORD,
      name: "Admin",
      emailVerified: true,
    });
    const auditor = await sdk.auth.createUser({
      email: `auditor-${crypto.randomUUID()}@example.test`,
      password: PASSWORD,
      name: "Auditor",
      emailVerified: true,
    });
    const tenant = await sdk.auth.api.createOrganization({
      body: { name: "Bench tenant", slug: `bench-${crypto.randomUUID()}`, userId: admin.id },
    });
    await sdk.permissions.assignRole(auditor.id, "auditor");
    const cookieOf = async (email: string) =>
      cookieHeader(
        (await sdk.auth.api.signInEmail({ body: { email, password: PASSWORD }, returnHeaders: true })).headers,
      );
    const adminHeaders = { cookie: await cookieOf(admin.email), "x-tenant-id": tenant!.id };
    const auditorHeaders = { cookie: await cookieOf(auditor.email) };
    const app = createApp(sdk, { logRequests: false });
    const server = await ctx.serve(app.fetch);

    // Generated tenants (organizations) and monthly audit partitions for the span of generated rows.
    const started = performance.now();
    await owner`insert into auth.organizations (id, name, slug)
      select md5('org-' || k)::uuid, 'Tenant ' || k, 'growth-' || k from generate_series(0, ${TENANTS - 1}::int) k`;
    await owner.unsafe(`do $$ declare m timestamp; name text; begin
      for m in select generate_series(date_trunc('month', (now() - interval '${AUDIT_SPAN_DAYS + 1} days') at time zone 'UTC'),
                                      date_trunc('month', now() at time zone 'UTC'), interval '1 month') loop
        name := 'audit_logs_y' || to_char(m, 'YYYY') || 'm' || to_char(m, 'MM');
        if to_regclass('audit.' || name) is null then
          execute format('create table audit.%I partition of audit.audit_logs for values from (%L) to (%L)',
                         name, m at time zone 'UTC', (m + interval '1 month') at time zone 'UTC');
          execute format('revoke all on audit.%I from sv_app', name);
        end if;
      end loop; end $$`);
    const [adminRole] = await owner<
      { id: string }[]
    >`select id from permissions.roles where tenant_id is null and name = 'admin'`;
    const adminRoleId = adminRole!.id;
    const auditTenantIds = [tenant!.id, ...Array.from({ length: AUDIT_TENANTS - 1 }, (_, k) => md5Uuid(`org-${k}`))];
    const passwordHash = await hashPassword(PASSWORD, TEST_ONLY_SCRYPT);
    generationTotal += seconds(started);

    const max = sizes[sizes.length - 1]!;
    const span = `${AUDIT_SPAN_DAYS} days`;
    let previous = 0;
    const firstAt: Record<string, number> = {};
    for (const size of sizes) {
      let stage = "data generation";
      try {
        const step: string[] = [];
        const timed = async (what: string, fn: () => Promise<unknown>) => {
          const t0 = performance.now();
          await fn();
          const s = seconds(t0);
          generationTotal += s;
          step.push(`${what} ${s.toFixed(1)} s`);
        };
        // Audit rows, oldest first: time grows with the id, as when they are written.
        await timed("audit", async () => {
          for (let from = previous; from < size; from += BATCH) {
            const to = Math.min(size, from + BATCH);
            await owner`
            insert into audit.audit_logs (occurred_at, tenant_id, actor_type, actor_id, action, target_type, target_id,
                                          ip, user_agent, request_id, metadata, changes)
            select now() - ${span}::interval + (k::float8 / ${max}) * ${span}::interval,
                   (${auditTenantIds}::uuid[])[1 + k % ${AUDIT_TENANTS}], 'user', 'user-' || (k % 5000),
                   (array['role.created', 'role.deleted', 'member.added', 'user.signed_in', 'email.sent'])[1 + k % 5],
                   'role', 'role-' || k, '10.' || (k % 250) || '.' || (k % 200) || '.1', 'Mozilla/5.0 (X11; Linux x86_64) bench',
                   md5(k::text), jsonb_build_object('n', k, 'source', 'bench'),
                   case when k % 5 < 2 then jsonb_build_object('after', jsonb_build_object('name', 'role-' || k, 'permissions', jsonb_build_array('audit:read'))) end
            from generate_series(${from}::bigint, ${to - 1}::bigint) k`;
          }
        });
        await timed("users", async () => {
          for (let from = previous; from < size; from += BATCH) {
            const to = Math.min(size, from + BATCH);
            await owner`insert into auth.users (id, name, email, email_verified)
            select md5('user-' || k)::uuid, 'User ' || k, 'g' || k || '@growth.test', true from generate_series(${from}::int, ${to - 1}::int) k`;
            await owner`insert into auth.accounts (account_id, provider_id, user_id, password)
            select md5('user-' || k)::uuid::text, 'credential', md5('user-' || k)::uuid, ${passwordHash} from generate_series(${from}::int, ${to - 1}::int) k`;
          }
        });
        const secondary = size <= SECONDARY_MAX;
        // One tenant role per user; the statement trigger recomputes permission_cache and locks per user.
        if (secondary)
          await timed("assignments", async () => {
            for (let from = previous; from < size; from += ASSIGNMENT_BATCH) {
              const to = Math.min(size, from + ASSIGNMENT_BATCH);
              await owner`insert into permissions.user_roles (user_id, role_id, tenant_id)
            select md5('user-' || k)::uuid, ${adminRoleId}, md5('org-' || (k % ${TENANTS}))::uuid from generate_series(${from}::int, ${to - 1}::int) k`;
            }
          });
        // Email: a due backlog of `size` rows (what was sent at the previous size stays, sent), all with
        // one next_attempt_at, as a backlog enqueued in one transaction has (now() is its start): the
        // case where a claim ordered by a key the index does not give reads and sorts all of it.
        if (secondary)
          await timed("email", async () => {
            const html = `<p>${"Welcome to the benchmark. ".repeat(20)}</p>`;
            const [due] = await owner<{ at: Date }[]>`select now() - interval '10 minutes' as at`;
            for (let from = 0; from < size; from += BATCH) {
              const to = Math.min(size, from + BATCH);
              await owner`insert into email.email_sends (to_address, template_key, category, subject, html, text, next_attempt_at)
            select 'r' || k || '-' || ${size}::int || '@growth.test', 'welcome', 'account', 'Welcome', ${html}, 'Welcome', ${due!.at}
            from generate_series(${from}::int, ${to - 1}::int) k`;
            }
          });
        await timed(
          "analyze",
          () => owner`analyze audit.audit_logs, auth.users, auth.accounts, permissions.user_roles, email.email_sends`,
        );
        generation.push(`${label(size)}: ${step.join(", ")}`);
        previous = size;
        const at = `@ ${label(size)}`;

        // Seal, then verify everything.
        stage = "seal + verify";
        let t0 = performance.now();
        const sealed = await sdk.audit.seal();
        const sealSeconds = seconds(t0);
        t0 = performance.now();
        const verified = await sdk.audit.verify();
        const verifySeconds = seconds(t0);
        rows.push({
          scenario: `growth: audit:verify ${at}`,
          throughput: verified.rows / verifySeconds,
          unit: "rows/s",
          pass: verified.ok ? undefined : false,
          note: `${verified.rows} rows in ${verifySeconds.toFixed(1)} s, ${verified.seals} seals, ${verified.ok ? "OK" : "BROKEN"}; sealing ${sealed.rows} new rows took ${sealSeconds.toFixed(1)} s (${Math.round(sealed.rows / sealSeconds)} rows/s)`,
        });

        // A filtered page in the tenant, over HTTP.
        stage = "audit page";
        const pageUrl = `${server.url}/api/v1/audit/events?action=role.&limit=20`;
        const probe = await fetch(pageUrl, { headers: adminHeaders });
        const probeBody = (await probe.json()) as { events?: unknown[] };
        const pageStatements = await statementsOf(async () => (await fetch(pageUrl, { headers: adminHeaders })).text());
        const pagePlans = await planShapes(owner, pageStatements, tenant!.id);
        const auditPlan = pagePlans.filter((p) => p.includes("audit_logs"));
        const page = await ctx.load({
          url: pageUrl,
          headers: adminHeaders,
          connections: 4,
          seconds: Math.min(ctx.seconds, 3),
        });
        firstAt.page ??= page.p50Ms;
        const pageRatio = Math.max(page.p50Ms, 1) / Math.max(firstAt.page, 1);
        rows.push({
          scenario: `growth: audit page (action filter) ${at}`,
          throughput: page.requestsPerSecond,
          unit: "req/s",
          p50Ms: page.p50Ms,
          p99Ms: page.p99Ms,
          ratio: { against: `p50 at ${label(sizes[0]!)}`, value: pageRatio },
          target: `p50 <= ${PAGE_FLAT}x, no Seq Scan`,
          pass:
            probe.status === 200 &&
            page.non2xx + page.errors === 0 &&
            pageRatio <= PAGE_FLAT &&
            !scansWhole(auditPlan, ["audit_logs"]),
          note: `${probe.status}, ${probeBody.events?.length ?? 0} events a page, 4 connections; plan: ${auditPlan.join(" | ") || pagePlans.join(" | ")}`,
        });

        stage = "audit export";
        // The export, read for up to EXPORT_SECONDS.
        t0 = performance.now();
        const exported = await fetch(`${server.url}/api/v1/audit/events/export?scope=platform&format=ndjson`, {
          headers: auditorHeaders,
        });
        let bytes = 0;
        let complete = true;
        const reader = exported.body!.getReader();
        for (;;) {
          if (seconds(t0) > EXPORT_SECONDS) {
            complete = false;
            await reader.cancel();
            break;
          }
          const chunk = await reader.read();
          if (chunk.done) break;
          bytes += chunk.value.byteLength;
        }
        const exportSeconds = seconds(t0);
        rows.push({
          scenario: `growth: audit export (NDJSON) ${at}`,
          throughput: bytes / 1e6 / exportSeconds,
          unit: "MB/s",
          pass: exported.status === 200 ? undefined : false,
          note: `${exported.status}; ${(bytes / 1e6).toFixed(1)} MB in ${exportSeconds.toFixed(1)} s${complete ? ", complete" : `, stopped after ${EXPORT_SECONDS} s`}`,
        });

        if (secondary) {
          stage = "permission check";
          rows.push(
            await permissionCheckRow({
              ctx,
              databaseUrl: database.url,
              sdk,
              owner,
              adminId: admin.id,
              statementsOf,
              size,
              at,
            }),
          );
        }

        stage = "sign-in";
        // Sign-ins among `size` users.
        const someone = `g${Math.floor(size / 2)}@growth.test`;
        const signInStatements = await statementsOf(() =>
          sdk.auth.api.signInEmail({ body: { email: someone, password: PASSWORD } }),
        );
        const signInPlans = await planShapes(owner, signInStatements);
        const signIns = await ctx.measure(
          () => sdk.auth.api.signInEmail({ body: { email: someone, password: PASSWORD } }),
          {
            seconds: Math.min(ctx.seconds, 3),
            concurrency: 4,
          },
        );
        firstAt.signIn ??= signIns.opsPerSecond;
        rows.push({
          scenario: `growth: sign-in among ${label(size)} users`,
          throughput: signIns.opsPerSecond,
          unit: "ops/s",
          p50Ms: signIns.p50Ms,
          p99Ms: signIns.p99Ms,
          ratio: { against: `${label(sizes[0]!)} users`, value: signIns.opsPerSecond / firstAt.signIn },
          target: "no Seq Scan",
          pass: !scansWhole(signInPlans, ["users", "accounts", "sessions"]),
          note: `test-cost hashes (scrypt 2^11); 4 in flight; plans: ${signInPlans.join(" | ")}`,
        });

        if (secondary) {
          stage = "email dispatch";
          rows.push(await emailDispatchRow({ sdk, owner, fake, statementsOf }));
        }

        const [auditSize] = await owner<{ bytes: string }[]>`
        select sum(pg_total_relation_size(inhrelid))::text as bytes from pg_inherits where inhparent = 'audit.audit_logs'::regclass`;
        generation[generation.length - 1] += ` (audit_logs ${(Number(auditSize!.bytes) / 2 ** 20).toFixed(0)} MiB)`;
      } catch (error) {
        // The sizes measured so far stand; say where this one stopped.
        rows.push({
          scenario: `growth: the ${label(size)} step`,
          throughput: 0,
          unit: "s",
          pass: false,
          note: `failed at ${stage}: ${causes(error)}`,
        });
        break;
      }
    }
    await server.close();
    rows.unshift({
      scenario: `growth: data generation up to ${label(max)}`,
      throughput: generationTotal,
      unit: "s",
      note: `generate_series as the owner, triggers and constraints on; ${generation.join("; ")}${ctx.quick && !process.env.BENCH_GROWTH_MAX ? "; BENCH_QUICK: up to 100k" : ""}`,
    });
    return rows;
  } finally {
    await sdk.close();
    await owner.end({ timeout: 5 });
    await fake.close();
    await database.drop();
  }
};

export default scenario;
