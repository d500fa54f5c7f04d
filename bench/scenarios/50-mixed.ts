/**
 * Mixed traffic against the server as users run it (bench/sv-server.ts: `src/server.ts` in a child
 * process, production configuration, rate limits on), at four times its pool's size in connections,
 * for BENCH_MIXED_SECONDS (default 60; 15 with BENCH_QUICK) after an unmeasured warm-up:
 *   reads      GET /api/v1/me, GET /api/v1/me/permissions, an audit page (tenant admins)
 *   mutations  create then delete a tenant role (POST, DELETE /api/v1/permissions/roles), audited
 *   sign-ins   POST /api/auth/sign-in/email at the production password cost (OWASP scrypt)
 *   email      POST /api/auth/request-password-reset (a reset email enqueued, then sent by the
 *              server's dispatcher through the Resend SDK to a local stand-in)
 * Sign-ins and reset requests are limited per client address (10 and 5 a minute): each comes from an
 * address of its own through X-Forwarded-For, which the server trusts (TRUST_PROXY=1) as it would
 * behind a proxy. A 429 would still be counted apart from errors.
 *
 * Targets: no error (5xx, socket error) and no timeout (10 s), and the server's RSS flat after the
 * warm-up: sampled every second, the median of the last quarter within ±10 % of the first quarter's.
 */
import postgres from "postgres";
import { createSdk } from "../../src/index.js";
import { OWASP_SCRYPT } from "../../src/modules/auth/index.js";
import { startFakeResend } from "../../src/modules/email/testing/fake-resend.js";
import { median } from "../harness.js";
import { type CookieJar, expectStatus, requestJson, signInOver } from "../http-client.js";
import { poolMaxOf, PUBLIC_ORIGIN, startSvServer } from "../sv-server.js";
import type { MixedFlow, MixedStepResult, Row, Scenario } from "../types.js";

const PASSWORD = "correct horse battery staple";
const RSS_TOLERANCE = 0.1;
/** Shares of the connections, by kind of traffic. */
const SHARES = { reads: 0.65, mutations: 0.2, email: 0.1, signIns: 0.05 };

function secondsFromEnv(quick: boolean): number {
  const raw = process.env.BENCH_MIXED_SECONDS;
  if (raw === undefined || raw === "") return quick ? 15 : 60;
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds < 5 || seconds > 600) {
    throw new Error(`BENCH_MIXED_SECONDS must be between 5 and 600, got '${raw}'`);
  }
  return seconds;
}

/** Splits `total` connections by `shares`, at least one each, largest remainders first. */
function split<K extends string>(total: number, shares: Record<K, number>): Record<K, number> {
  const keys = Object.keys(shares) as K[];
  const counts = Object.fromEntries(keys.map((k) => [k, Math.max(1, Math.floor(total * shares[k]))])) as Record<
    K,
    number
  >;
  let left = total - keys.reduce((n, k) => n + counts[k], 0);
  const byRemainder = [...keys].sort((a, b) => ((total * shares[b]) % 1) - ((total * shares[a]) % 1));
  for (let i = 0; left > 0; i++, left--) counts[byRemainder[i % keys.length]!]++;
  return counts;
}

/** n connections spread over flows as evenly as possible. */
const spread = (n: number, parts: number) =>
  Array.from({ length: parts }, (_, i) => Math.floor(n / parts) + (i < n % parts ? 1 : 0));

const statusText = (statuses: Record<string, number>) =>
  Object.entries(statuses)
    .map(([code, n]) => `${n}×${code}`)
    .join(" ");

const scenario: Scenario = async (ctx) => {
  const seconds = secondsFromEnv(ctx.quick);
  const warmUpSeconds = ctx.quick ? 5 : 10;
  const database = await ctx.freshDatabase();
  const fake = await startFakeResend();
  try {
    // Setup through the SDK, before the server starts: verified users (their hashes at the production
    // cost, so a sign-in costs what it costs in production) and two tenants with an admin each.
    const setup = createSdk({
      databaseUrl: database.url,
      environment: "test",
      auth: { passwordCost: OWASP_SCRYPT, rateLimit: false },
    });
    const admins: { email: string; tenantId: string }[] = [];
    const signInEmail = `signin-${crypto.randomUUID()}@example.test`;
    try {
      await setup.auth.createUser({ email: signInEmail, password: PASSWORD, name: "Signs In", emailVerified: true });
      for (const name of ["A", "B"]) {
        const owner = await setup.auth.createUser({
          email: `owner-${name}-${crypto.randomUUID()}@example.test`,
          password: PASSWORD,
          name: `Owner ${name}`,
          emailVerified: true,
        });
        const email = `admin-${name}-${crypto.randomUUID()}@example.test`;
        const admin = await setup.auth.createUser({
          email,
          password: PASSWORD,
          name: `Admin ${name}`,
          emailVerified: true,
        });
        const org = await setup.auth.api.createOrganization({
          body: { name: `Tenant ${name}`, slug: `t-${crypto.randomUUID()}`, userId: owner.id },
        });
        await setup.auth.api.addMember({ body: { userId: admin.id, organizationId: org!.id, role: "admin" } });
        admins.push({ email, tenantId: org!.id });
      }
    } finally {
      await setup.close();
    }

    const server = await startSvServer(ctx, { databaseUrl: database.url, resendUrl: fake.url });
    const poolMax = poolMaxOf(database.url);
    const connections = 4 * poolMax;
    try {
      // Each admin signs in through the server and makes their tenant the active one.
      const jars: CookieJar[] = [];
      for (const admin of admins) {
        const jar = await signInOver(server, PUBLIC_ORIGIN, admin.email, PASSWORD);
        expectStatus(
          await requestJson(server, "/api/auth/organization/set-active", {
            body: { organizationId: admin.tenantId },
            jar,
            headers: { origin: PUBLIC_ORIGIN },
          }),
          200,
          "set-active",
        );
        const me = expectStatus(await requestJson(server, "/api/v1/me", { jar }), 200, "GET /api/v1/me");
        if ((me.body as { tenant?: { id: string } }).tenant?.id !== admin.tenantId)
          throw new Error("the admin's session does not act in their tenant");
        jars.push(jar);
      }

      const counts = split(connections, SHARES);
      const browser = (jar: CookieJar) => ({ cookie: jar.header, origin: PUBLIC_ORIGIN });
      const json = { "content-type": "application/json", origin: PUBLIC_ORIGIN };
      const flows: MixedFlow[] = [];
      const reads = [
        { label: "GET /api/v1/me", path: "/api/v1/me" },
        { label: "GET /api/v1/me/permissions", path: "/api/v1/me/permissions" },
        { label: "GET /api/v1/audit/events (page)", path: "/api/v1/audit/events?action=role.&limit=20" },
      ];
      spread(counts.reads, reads.length * jars.length).forEach((n, i) => {
        const read = reads[i % reads.length]!;
        const jar = jars[Math.floor(i / reads.length)]!;
        if (n > 0)
          flows.push({
            name: `read ${read.label}`,
            connections: n,
            steps: [{ label: read.label, path: read.path, headers: browser(jar) }],
          });
      });
      spread(counts.mutations, jars.length).forEach((n, i) => {
        if (n === 0) return;
        flows.push({
          name: `mutations in tenant ${i}`,
          connections: n,
          steps: [
            {
              label: "POST /api/v1/permissions/roles",
              method: "POST",
              path: "/api/v1/permissions/roles",
              headers: { ...browser(jars[i]!), "content-type": "application/json" },
              body: JSON.stringify({ name: "bench-{u}", permissions: ["audit:read"] }),
              capture: { id: "id" },
            },
            {
              label: "DELETE /api/v1/permissions/roles/:id",
              method: "DELETE",
              path: "/api/v1/permissions/roles/{id}",
              headers: browser(jars[i]!),
            },
          ],
        });
      });
      flows.push({
        name: "sign-ins",
        connections: counts.signIns,
        steps: [
          {
            label: "POST /api/auth/sign-in/email",
            method: "POST",
            path: "/api/auth/sign-in/email",
            headers: { ...json, "x-forwarded-for": "{ip}" },
            body: JSON.stringify({ email: signInEmail, password: PASSWORD }),
          },
        ],
      });
      flows.push({
        name: "email",
        connections: counts.email,
        steps: [
          {
            label: "POST /api/auth/request-password-reset",
            method: "POST",
            path: "/api/auth/request-password-reset",
            headers: { ...json, "x-forwarded-for": "{ip}" },
            body: JSON.stringify({ email: signInEmail, redirectTo: `${PUBLIC_ORIGIN}/reset` }),
          },
        ],
      });

      const warmUp = await ctx.mixedLoad({ base: server.url, seconds: warmUpSeconds, flows });
      const samples: number[] = [];
      // Where the server's pool connections are, once a second: running a statement, idle inside an
      // open transaction (the request is doing something else meanwhile, e.g. hashing a password), or
      // waiting for a lock — and of which kind.
      const observer = postgres(database.url, { max: 1, onnotice: () => {} });
      const activity = new Map<string, number>();
      let activitySamples = 0;
      const sampler = setInterval(() => {
        server.rssBytes().then(
          (bytes) => samples.push(bytes),
          () => undefined,
        );
        observer<{ what: string; n: number }[]>`
          select coalesce(state, '?') || coalesce(' / ' || wait_event_type || ':' || wait_event, '')
                 || case when state = 'idle in transaction' then ' after "' || left(regexp_replace(query, '\\s+', ' ', 'g'), 48) || '"' else '' end as what,
                 count(*)::int as n
          from pg_stat_activity where datname = current_database() and application_name = 'sv-sdk' and pid <> pg_backend_pid()
          group by 1`.then(
          (found) => {
            activitySamples++;
            for (const { what, n } of found) activity.set(what, (activity.get(what) ?? 0) + n);
          },
          () => undefined,
        );
      }, 1000);
      const cpuBefore = await server.cpuMicros();
      const threadBefore = await server.mainThreadMicros();
      const deliveredBefore = fake.delivered.length;
      let result: Awaited<ReturnType<typeof ctx.mixedLoad>>;
      try {
        result = await ctx.mixedLoad({ base: server.url, seconds, flows, timeoutMs: 10_000 });
      } finally {
        clearInterval(sampler);
        await observer.end({ timeout: 5 });
      }
      const connectionsBy = [...activity]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 8)
        .map(([what, n]) => `${(n / Math.max(1, activitySamples)).toFixed(1)} ${what}`)
        .join(", ");
      const cpuSeconds = ((await server.cpuMicros()) - cpuBefore) / 1e6;
      const threadAfter = await server.mainThreadMicros();
      const loopOnCpu = (threadAfter.onCpu - threadBefore.onCpu) / 1e6 / result.seconds;
      const loopWaiting = (threadAfter.waiting - threadBefore.waiting) / 1e6 / result.seconds;
      const delivered = fake.delivered.length - deliveredBefore;

      const rows: Row[] = [];
      const all = Object.entries(result.byLabel);
      const total = all.reduce((n, [, s]) => n + s.count, 0);
      const serverErrors = (s: MixedStepResult) =>
        Object.entries(s.statuses).reduce((n, [code, c]) => n + (Number(code) >= 500 ? c : 0), 0);
      const tooMany = (s: MixedStepResult) => s.statuses["429"] ?? 0;
      const otherRefusals = (s: MixedStepResult) =>
        Object.entries(s.statuses).reduce(
          (n, [code, c]) => n + (Number(code) >= 400 && Number(code) < 500 && code !== "429" ? c : 0),
          0,
        );
      const sum = (f: (s: MixedStepResult) => number) => all.reduce((n, [, s]) => n + f(s), 0);
      const errors = sum(serverErrors) + sum((s) => s.socketErrors);
      const timeouts = sum((s) => s.timeouts);
      const warmUpTrouble = Object.values(warmUp.byLabel).reduce(
        (n, s) => n + serverErrors(s) + s.socketErrors + s.timeouts,
        0,
      );
      const problems = server.problems();
      rows.push({
        scenario: `mixed: ${connections} connections x ${seconds} s (4x pool ${poolMax})`,
        throughput: total / result.seconds,
        unit: "req/s",
        target: "0 errors, 0 timeouts",
        pass: errors === 0 && timeouts === 0,
        note: [
          `${errors} errors (5xx ${sum(serverErrors)}, socket ${sum((s) => s.socketErrors)}), ${timeouts} timeouts (10 s), ${sum(tooMany)} x 429, ${sum(otherRefusals)} other 4xx`,
          `connections: reads ${counts.reads}, mutations ${counts.mutations}, sign-ins ${counts.signIns}, email ${counts.email}`,
          `server CPU ${(cpuSeconds / result.seconds).toFixed(2)} cores; its event loop on a CPU ${(loopOnCpu * 100).toFixed(0)} % of the time, runnable but waiting for one ${(loopWaiting * 100).toFixed(0)} %`,
          `server's connections on average: ${connectionsBy}`,
          `${delivered} emails delivered to the stand-in meanwhile`,
          `warm-up ${warmUpSeconds} s: ${warmUpTrouble} errors/timeouts`,
          problems.length > 0 ? `server log: ${problems.at(-1)!.slice(0, 300)}` : "",
          ctx.quick ? "BENCH_QUICK: shorter than the 60 s target run" : "",
        ]
          .filter(Boolean)
          .join("; "),
      });
      for (const [label, s] of all) {
        const trouble = serverErrors(s) + s.socketErrors + s.timeouts;
        rows.push({
          scenario: `mixed: ${label}`,
          throughput: s.count / result.seconds,
          unit: "req/s",
          p50Ms: s.p50Ms,
          p99Ms: s.p99Ms,
          pass: trouble === 0 ? undefined : false,
          note: [
            statusText(s.statuses),
            s.socketErrors ? `${s.socketErrors} socket errors` : "",
            s.timeouts ? `${s.timeouts} timeouts` : "",
            `max ${s.maxMs.toFixed(0)} ms`,
          ]
            .filter(Boolean)
            .join("; "),
        });
      }
      const mib = (bytes: number) => bytes / 2 ** 20;
      const quarter = Math.max(1, Math.floor(samples.length / 4));
      const first = median(samples.slice(0, quarter));
      const last = median(samples.slice(-quarter));
      const drift = last / first - 1;
      rows.push({
        scenario: "mixed: server RSS after warm-up",
        throughput: mib(last),
        unit: "MiB",
        ratio: { against: "first quarter", value: last / first },
        target: `within ±${RSS_TOLERANCE * 100} %`,
        pass: samples.length >= 8 && Math.abs(drift) <= RSS_TOLERANCE,
        note: `${samples.length} samples (1/s): first-quarter median ${mib(first).toFixed(0)} MiB, last-quarter ${mib(last).toFixed(0)} MiB (${(drift * 100).toFixed(1)} %), min ${mib(Math.min(...samples)).toFixed(0)}, max ${mib(Math.max(...samples)).toFixed(0)} MiB`,
      });
      return rows;
    } finally {
      await server.stop();
    }
  } finally {
    await fake.close();
    await database.drop();
  }
};

export default scenario;
