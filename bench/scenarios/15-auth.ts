/**
 * Auth: the authenticated hot path (session from the cookie cache and the in-process session cache)
 * must make no session query, and sign-ins per second at the chosen password hashing cost.
 */
import { createApp } from "../../src/app.js";
import { createSdk } from "../../src/index.js";
import { OWASP_SCRYPT, TEST_ONLY_SCRYPT } from "../../src/modules/auth/index.js";
import { DB_POOL_MAX } from "../harness.js";
import { cookieHeader } from "../../src/testing.js";
import type { Row, Scenario } from "../types.js";

const scenario: Scenario = async (ctx) => {
  const database = await ctx.freshDatabase();
  let queries = 0;
  const sdk = createSdk({
    databaseUrl: database.url,
    environment: "test",
    onQuery: () => queries++,
    auth: { passwordCost: TEST_ONLY_SCRYPT, rateLimit: false },
  });
  const rows: Row[] = [];
  try {
    const email = `bench-${crypto.randomUUID()}@example.test`;
    const password = "correct horse battery staple";
    await sdk.auth.createUser({ email, password, name: "Bench", emailVerified: true });
    await sdk.auth.listen();
    const signIn = await sdk.auth.api.signInEmail({ body: { email, password }, returnHeaders: true });
    const cookie = cookieHeader(signIn.headers);

    // 1. GET /api/v1/me: the full middleware stack and the session, no query of its own.
    const app = createApp(sdk, { logRequests: false });
    const server = await ctx.serve(app.fetch);
    try {
      const url = `${server.url}/api/v1/me`;
      await ctx.load({ url, headers: { cookie }, connections: DB_POOL_MAX, seconds: 1 });
      queries = 0;
      const result = await ctx.load({ url, headers: { cookie }, connections: DB_POOL_MAX });
      const sessionQueries = queries;
      rows.push({
        scenario: "auth: authenticated read (GET /api/v1/me)",
        throughput: result.requestsPerSecond,
        unit: "req/s",
        p50Ms: result.p50Ms,
        p99Ms: result.p99Ms,
        ratio: { against: "bare", value: result.requestsPerSecond / ctx.baselines.bare.requestsPerSecond },
        note: `${result.non2xx} non-2xx`,
      });
      rows.push({
        scenario: "auth: session queries during that load",
        throughput: sessionQueries,
        unit: "queries",
        target: "0 queries",
        pass: sessionQueries === 0 && result.non2xx === 0,
        note: "counted with the router's query hook; cookie cache + in-process session cache",
      });
    } finally {
      await server.close();
    }
  } finally {
    await sdk.close();
  }

  // 2. Sign-ins per second at the production hashing cost (OWASP scrypt N=2^17, r=8, p=1).
  const owasp = createSdk({
    databaseUrl: database.url,
    environment: "test",
    auth: { passwordCost: OWASP_SCRYPT, rateLimit: false },
  });
  try {
    const email = `owasp-${crypto.randomUUID()}@example.test`;
    const password = "correct horse battery staple";
    await owasp.auth.createUser({ email, password, name: "Bench", emailVerified: true });
    const result = await ctx.measure(() => owasp.auth.api.signInEmail({ body: { email, password } }), {
      seconds: Math.min(ctx.seconds, 5),
      concurrency: 4,
    });
    rows.push({
      scenario: "auth: sign-ins (OWASP scrypt)",
      throughput: result.opsPerSecond,
      unit: "ops/s",
      p50Ms: result.p50Ms,
      p99Ms: result.p99Ms,
      note: "scrypt N=2^17 r=8 p=1 (128 MiB, libuv pool of 4); the cost bounds sign-in throughput by design",
    });
  } finally {
    await owasp.close();
    await database.drop();
  }
  return rows;
};

export default scenario;
