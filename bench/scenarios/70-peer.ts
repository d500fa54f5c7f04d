/**
 * Peer rows: the same flows on sv-sdk's server and on a stock better-auth + Hono app
 * (bench/peer/server.ts), both in child processes of their own, on the same PostgreSQL (a database
 * each), with the same password hashing (OWASP scrypt) and rate limits on at each side's production
 * default. Every comparison is 3 alternating rounds (ours then the peer, the peer then ours, …), each
 * load followed by a wait until its server is idle again; the row gives the median round's ratio.
 *   GET /api/auth/get-session, cookie-cached session, both sides             >= 1.0x, 0 statements
 *   authenticated read      GET /api/v1/me vs the peer's getSession-backed GET /api/me   >= 1.5x
 *   sign-up                 ours also writes the default role, an audit event and the verification
 *                           email's outbox row in the same transaction (the peer signs the user in
 *                           instead: a session row); a fixed number per round  >= 0.9x the peer
 *   ours with get-session requests in flight at twice its pool's size: does it still answer?
 * Our statements per cached get-session are counted in-process with the SDK's onQuery hook (same
 * configuration, the same signed cookie), and checked against the transactions the server process
 * committed during its loads (pg_stat_database).
 * Requests to /api/auth come from a new client address each (X-Forwarded-For; ours trusts it with
 * TRUST_PROXY=1, the peer reads it by default), so neither side's per-client limit answers 429.
 */
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { createApp } from "../../src/app.js";
import { createSdk } from "../../src/index.js";
import { OWASP_SCRYPT } from "../../src/modules/auth/index.js";
import { startFakeResend } from "../../src/modules/email/testing/fake-resend.js";
import { CookieJar, expectStatus, requestJson, signInOver } from "../http-client.js";
import { PEER_DDL } from "../peer/schema.js";
import { poolMaxOf, PUBLIC_ORIGIN, startSvServer } from "../sv-server.js";
import type { HttpResult, LoadOptions, Row, Scenario, ServerProcess } from "../types.js";

const PASSWORD = "correct horse battery staple";
const ROUNDS = 3;
const PROBE_REQUESTS = 20;

interface Side {
  name: string;
  server: ServerProcess;
  jar: CookieJar;
  readPath: string;
}

const statusText = (r: HttpResult) =>
  Object.entries(r.statuses)
    .map(([code, n]) => `${n}x${code}`)
    .join(" ");

const scenario: Scenario = async (ctx) => {
  const oursDb = await ctx.freshDatabase();
  const peerDb = await ctx.freshDatabase();
  const fake = await startFakeResend();
  const rows: Row[] = [];
  try {
    const owner = postgres(peerDb.url, { max: 1, onnotice: () => {} });
    await owner.unsafe(PEER_DDL);
    await owner.end({ timeout: 5 });

    const email = `peer-bench-${crypto.randomUUID()}@example.test`;
    const setup = createSdk({
      databaseUrl: oursDb.url,
      environment: "test",
      auth: { passwordCost: OWASP_SCRYPT, rateLimit: false },
    });
    try {
      await setup.auth.createUser({ email, password: PASSWORD, name: "Bench", emailVerified: true });
    } finally {
      await setup.close();
    }
    const oursServer = await startSvServer(ctx, { databaseUrl: oursDb.url, resendUrl: fake.url });
    const peerServer = await ctx.startServer({
      entry: "bench/peer/server.ts",
      env: {
        NODE_ENV: "production",
        DATABASE_URL: peerDb.url,
        BETTER_AUTH_SECRET: randomBytes(32).toString("base64url"),
        BETTER_AUTH_URL: PUBLIC_ORIGIN,
      },
    });
    try {
      const oursJar = await signInOver(oursServer, PUBLIC_ORIGIN, email, PASSWORD);
      const peerJar = new CookieJar();
      expectStatus(
        await requestJson(peerServer, "/api/auth/sign-up/email", {
          body: { email, password: PASSWORD, name: "Bench" },
          jar: peerJar,
          headers: { origin: PUBLIC_ORIGIN },
        }),
        200,
        "the peer's sign-up",
      );
      const ours: Side = { name: "ours", server: oursServer, jar: oursJar, readPath: "/api/v1/me" };
      const peer: Side = { name: "peer", server: peerServer, jar: peerJar, readPath: "/api/me" };
      for (const side of [ours, peer]) {
        expectStatus(
          await requestJson(side.server, side.readPath, { jar: side.jar }),
          200,
          `${side.name} ${side.readPath}`,
        );
        expectStatus(
          await requestJson(side.server, "/api/auth/get-session", { jar: side.jar }),
          200,
          `${side.name} get-session`,
        );
      }

      const poolMax = poolMaxOf(oursDb.url);
      // Below the pool's size: at the pool's size ours wedges (see the last row), and in flight
      // within the pool is where postgres.js is measured elsewhere (#747). The same on both sides.
      const connections = poolMax - 2;
      // Password hashes run on libuv's thread pool (4 threads): more sign-ups in flight only queue.
      const signUpConnections = 4;
      const commits = postgres(oursDb.url, { max: 1, onnotice: () => {} });
      const committed = async () => {
        // Statistics are flushed by backends about once a second: wait for the last ones.
        await new Promise((r) => setTimeout(r, 1500));
        const [row] = await commits<
          { n: string }[]
        >`select xact_commit::text as n from pg_stat_database where datname = current_database()`;
        return Number(row!.n);
      };

      type Load = Omit<LoadOptions, "url"> & { path: string; seconds: number; connections: number };
      /** 3 alternating rounds of the same load on both sides; the median round's ratio. */
      const compare = async (load: (side: Side) => Load) => {
        const results = { ours: [] as HttpResult[], peer: [] as HttpResult[] };
        let oursCommits = 0;
        let oursRequests = 0;
        const run = async (side: Side, measured: boolean) => {
          const { path, ...options } = load(side);
          const before = measured && side === ours ? await committed() : 0;
          const warmUp = options.amount === undefined ? { seconds: 1 } : { amount: options.connections };
          const result = await ctx.load({ ...options, url: `${side.server.url}${path}`, ...(measured ? {} : warmUp) });
          // Whatever the load left running on the server finishes before the other side's load.
          await side.server.settle();
          if (!measured) return;
          if (side === ours) {
            oursCommits += (await committed()) - before;
            oursRequests += Object.values(result.statuses).reduce((a, b) => a + b, 0);
          }
          results[side.name as "ours" | "peer"].push(result);
        };
        for (const side of [ours, peer]) await run(side, false);
        for (let round = 0; round < ROUNDS; round++) {
          for (const side of round % 2 === 0 ? [ours, peer] : [peer, ours]) await run(side, true);
        }
        // A side that answered nothing makes its ratio 0 (ours) or infinite (the peer's), never NaN.
        const ratios = results.ours.map((o, i) =>
          o.requestsPerSecond === 0 ? 0 : o.requestsPerSecond / results.peer[i]!.requestsPerSecond,
        );
        const at = ratios.map((r, i) => [r, i] as const).sort((a, b) => a[0] - b[0])[Math.floor(ratios.length / 2)]![1];
        return {
          ours: results.ours[at]!,
          peer: results.peer[at]!,
          ratio: ratios[at]!,
          ratios,
          all: results,
          connections: load(ours).connections,
          commitsPerRequest: oursRequests === 0 ? Number.NaN : oursCommits / oursRequests,
        };
      };
      type Comparison = Awaited<ReturnType<typeof compare>>;
      const failures = (rs: HttpResult[]) => rs.reduce((n, r) => n + r.errors + r.non2xx, 0);
      const note = (c: Comparison, extra: string[]) =>
        [
          ...extra,
          `rounds ours/peer ${c.ratios.map((r) => r.toFixed(2)).join(" / ")}`,
          `peer ${c.peer.requestsPerSecond.toFixed(1)} req/s (p50 ${c.peer.p50Ms} ms, p99 ${c.peer.p99Ms} ms)`,
          `ours ${statusText(c.ours) || "no answer"}; peer ${statusText(c.peer) || "no answer"}`,
          failures([...c.all.ours, ...c.all.peer]) > 0
            ? `${failures(c.all.ours)} ours / ${failures(c.all.peer)} peer errors or non-2xx`
            : "",
          `${c.connections} connections`,
        ]
          .filter(Boolean)
          .join("; ");
      const clean = (c: Comparison) => failures([...c.all.ours, ...c.all.peer]) === 0;

      // 1. get-session on a cookie-cached session, both sides through better-auth's handler, each
      // request from a new client address.
      const getSession = await compare((side) => ({
        path: "/api/auth/get-session",
        headers: { cookie: side.jar.header },
        vary: { clientAddressHeader: "x-forwarded-for" },
        connections,
        seconds: ctx.seconds,
      }));
      // Our statements per cached get-session, counted in-process: same configuration as the server
      // (production, rate limits on, trusted proxy), the same secret, the same cookie.
      let statements: string[] = [];
      const probe = createSdk({
        databaseUrl: oursDb.url,
        databaseAppUrl: oursServer.appUrl,
        environment: "production",
        onQuery: (_database, query) => statements.push(query.replace(/\s+/g, " ").slice(0, 60)),
        auth: { secret: oursServer.secret, baseUrl: PUBLIC_ORIGIN, trustedOrigins: [PUBLIC_ORIGIN] },
      });
      let perRequest: number;
      let sample: string[];
      try {
        const app = createApp(probe, { trustProxy: true, logRequests: false, trustedOrigins: [PUBLIC_ORIGIN] });
        const ask = (i: number) =>
          app.request("/api/auth/get-session", {
            headers: { cookie: oursJar.header, "x-forwarded-for": `172.16.0.${i}` },
          });
        const first = await ask(1);
        if (first.status !== 200) throw new Error(`the in-process get-session probe answered ${first.status}`);
        // The session feed starts on first use (one LISTEN per process); the row counts what a cached
        // get-session costs after that.
        await (await ask(2)).text();
        await new Promise((resolve) => setTimeout(resolve, 200));
        statements = [];
        for (let i = 0; i < PROBE_REQUESTS; i++) await (await ask(3 + i)).text();
        perRequest = statements.length / PROBE_REQUESTS;
        sample = [...new Set(statements)];
      } finally {
        await probe.close();
      }
      rows.push({
        scenario: "peer: GET /api/auth/get-session (cookie cache)",
        throughput: getSession.ours.requestsPerSecond,
        unit: "req/s",
        p50Ms: getSession.ours.p50Ms,
        p99Ms: getSession.ours.p99Ms,
        ratio: { against: "peer better-auth", value: getSession.ratio },
        target: ">= 1.0x peer, 0 statements",
        pass: getSession.ratio >= 1 && perRequest === 0 && clean(getSession),
        note: note(getSession, [
          `ours: ${perRequest} statements per cached get-session (onQuery, ${PROBE_REQUESTS} requests)${sample.length ? `: ${sample.join(" | ")}` : ""}`,
          `the server committed ${getSession.commitsPerRequest.toFixed(2)} transactions per request under load`,
          `${ctx.seconds} s loads`,
        ]),
      });

      // 2. An authenticated read: our /api/v1/me against the peer's documented getSession route.
      const read = await compare((side) => ({
        path: side.readPath,
        headers: { cookie: side.jar.header },
        connections,
        seconds: ctx.seconds,
      }));
      rows.push({
        scenario: "peer: authenticated read (/api/v1/me vs getSession route)",
        throughput: read.ours.requestsPerSecond,
        unit: "req/s",
        p50Ms: read.ours.p50Ms,
        p99Ms: read.ours.p99Ms,
        ratio: { against: "peer better-auth", value: read.ratio },
        target: ">= 1.5x peer",
        pass: read.ratio >= 1.5 && clean(read),
        note: note(read, [
          `ours committed ${read.commitsPerRequest.toFixed(2)} transactions per request`,
          `${ctx.seconds} s loads`,
        ]),
      });

      // 3. Sign-up: a new address and a new email per request. Hashing bounds both sides to a few a
      // second on 2 cores (and a busy machine makes one take seconds): a fixed number per round,
      // timed until the last answer, rather than a window that would cut requests off.
      const signUps = ctx.quick ? 8 : 16;
      const signUp = await compare(() => ({
        path: "/api/auth/sign-up/email",
        method: "POST",
        headers: { "content-type": "application/json", origin: PUBLIC_ORIGIN },
        body: JSON.stringify({ email: "su-TOKEN@example.test", password: PASSWORD, name: "Bench" }),
        vary: { clientAddressHeader: "x-forwarded-for", uniqueToken: "TOKEN" },
        connections: signUpConnections,
        amount: signUps,
        seconds: 120,
        timeoutSeconds: 60,
      }));
      rows.push({
        scenario: "peer: sign-up (OWASP scrypt both)",
        throughput: signUp.ours.requestsPerSecond,
        unit: "req/s",
        p50Ms: signUp.ours.p50Ms,
        p99Ms: signUp.ours.p99Ms,
        ratio: { against: "peer better-auth", value: signUp.ratio },
        target: ">= 0.9x peer",
        pass: signUp.ratio >= 0.9 && clean(signUp),
        note: note(signUp, [
          "ours: user + account + default role + audit event + outbox row in one transaction; the peer: user + account + session",
          `${signUps} sign-ups a round`,
          `ours committed ${signUp.commitsPerRequest.toFixed(2)} transactions per request`,
        ]),
      });

      // 4. Last, because it may leave our server wedged: twice as many get-session requests in
      // flight as the pool has connections. Each opens its unit of work (a pooled connection) before
      // better-auth's rate limiter asks the same pool for another.
      const wedgeConnections = 2 * poolMax;
      const wedgeLoad = await ctx.load({
        url: `${oursServer.url}/api/auth/get-session`,
        headers: { cookie: oursJar.header },
        vary: { clientAddressHeader: "x-forwarded-for" },
        connections: wedgeConnections,
        seconds: 3,
      });
      const after = await fetch(`${oursServer.url}/api/auth/get-session`, {
        headers: { cookie: oursJar.header, "x-forwarded-for": "172.16.1.1" },
        signal: AbortSignal.timeout(5000),
      }).then(
        (r) => r.status,
        () => undefined,
      );
      rows.push({
        scenario: `peer: ours at ${wedgeConnections} get-session in flight (2x pool)`,
        throughput: wedgeLoad.requestsPerSecond,
        unit: "req/s",
        p50Ms: wedgeLoad.p50Ms,
        p99Ms: wedgeLoad.p99Ms,
        target: "still answers after",
        pass: after === 200 && wedgeLoad.requestsPerSecond > 0,
        note:
          after === 200
            ? `answered ${statusText(wedgeLoad)} during 3 s, and a request after it in time`
            : `wedged: ${statusText(wedgeLoad) || "nothing answered"} during 3 s, and no answer to a request 5 s after it — every pooled connection is held by a unit of work whose rate-limit write waits for one more`,
      });
      await commits.end({ timeout: 5 });
    } finally {
      await oursServer.stop();
      await peerServer.stop();
    }
    return rows;
  } finally {
    await fake.close();
    await oursDb.drop();
    await peerDb.drop();
  }
};

export default scenario;
