/**
 * The baselines as rows (measured by bench/run.ts before any scenario), and the driver-stability
 * row: the database baseline's route run 4 times back to back in one server process, which must not
 * lose more than 10 % between the first and the last run. postgres.js is known to degrade over a
 * long-lived process when in-flight queries exceed its pool (porsager/postgres#747), so the load keeps
 * exactly as many requests in flight as the pool has connections.
 */
import { baselinePool, dbQueryApp, DB_POOL_MAX } from "../harness.js";
import type { HttpResult, Row, Scenario } from "../types.js";

const STABILITY_RUNS = 4;
const MAX_DROP = 0.1;

const httpNote = (result: HttpResult, extra: string) =>
  [extra, result.errors > 0 ? `${result.errors} errors` : "", result.non2xx > 0 ? `${result.non2xx} non-2xx` : ""]
    .filter(Boolean)
    .join("; ");

const scenario: Scenario = async (ctx) => {
  const { bare, dbQuery } = ctx.baselines;
  const rows: Row[] = [
    {
      scenario: "baseline: bare Hono JSON",
      throughput: bare.requestsPerSecond,
      unit: "req/s",
      p50Ms: bare.p50Ms,
      p99Ms: bare.p99Ms,
      ratio: { against: "bare", value: 1 },
      note: httpNote(bare, "50 connections"),
    },
    {
      scenario: "baseline: Hono + 1 postgres.js query",
      throughput: dbQuery.requestsPerSecond,
      unit: "req/s",
      p50Ms: dbQuery.p50Ms,
      p99Ms: dbQuery.p99Ms,
      ratio: { against: "bare", value: dbQuery.requestsPerSecond / bare.requestsPerSecond },
      note: httpNote(dbQuery, `select 1; pool ${DB_POOL_MAX}, ${DB_POOL_MAX} connections (in flight <= pool)`),
    },
  ];

  const quick = process.env.BENCH_QUICK === "1";
  const seconds = quick ? 2 : 10;
  const database = await ctx.freshDatabase();
  const sql = baselinePool(database.url);
  const server = await ctx.serve(dbQueryApp(sql).fetch);
  try {
    // Unmeasured warm-up, so run 1 is not flattered or penalised by JIT and pool start-up.
    await ctx.load({ url: server.url, connections: DB_POOL_MAX, seconds: 1 });
    const runs: HttpResult[] = [];
    // Server-side CPU per request (this process serves; autocannon runs in a child) is what #747
    // shows growing, and unlike req/s it barely moves when other work shares the machine.
    const cpuPerRequest: number[] = [];
    for (let run = 0; run < STABILITY_RUNS; run++) {
      const before = process.cpuUsage();
      const result = await ctx.load({ url: server.url, connections: DB_POOL_MAX, seconds });
      const used = process.cpuUsage(before);
      runs.push(result);
      cpuPerRequest.push((used.user + used.system) / Math.max(1, result.requestsPerSecond * seconds));
    }
    const first = runs[0]!;
    const last = runs[runs.length - 1]!;
    const ratio = last.requestsPerSecond / first.requestsPerSecond;
    const errors = runs.reduce((n, r) => n + r.errors + r.non2xx, 0);
    rows.push({
      scenario: `driver stability: db query ${STABILITY_RUNS} x ${seconds} s`,
      throughput: last.requestsPerSecond,
      unit: "req/s",
      p50Ms: last.p50Ms,
      p99Ms: last.p99Ms,
      ratio: { against: "run 1", value: ratio },
      target: `>= ${(1 - MAX_DROP).toFixed(2)}x run 1`,
      pass: ratio >= 1 - MAX_DROP && errors === 0,
      note: [
        `runs ${runs.map((r) => Math.round(r.requestsPerSecond)).join(" / ")} req/s`,
        `drop ${((1 - ratio) * 100).toFixed(1)} %`,
        `server CPU ${cpuPerRequest.map((us) => Math.round(us)).join(" / ")} µs/req`,
        errors > 0 ? `${errors} errors` : "",
        quick ? "BENCH_QUICK: 2 s runs, not the 10 s target" : "",
      ]
        .filter(Boolean)
        .join("; "),
    });
  } finally {
    await server.close();
    await sql.end({ timeout: 5 });
    await database.drop();
  }
  return rows;
};

export default scenario;
