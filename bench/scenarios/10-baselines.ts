/**
 * The baselines as rows (measured by bench/run.ts before any scenario), and the driver-stability
 * row: the database baseline's route run 4 times back to back in one server process, which must not
 * lose more than 10 % between the first and the last run. Each run's seconds alternate with seconds
 * of the same route on a pool made fresh for that run, and runs are compared by that ratio.
 * postgres.js is known to degrade over a long-lived process when in-flight queries exceed its pool
 * (porsager/postgres#747), so the load keeps exactly as many requests in flight as the pool has
 * connections.
 */
import { baselinePool, dbQueryApp, DB_POOL_MAX, median } from "../harness.js";
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
  const slices = quick ? 2 : 10;
  const database = await ctx.freshDatabase();
  const sql = baselinePool(database.url);
  const server = await ctx.serve(dbQueryApp(sql).fetch);
  try {
    // Unmeasured warm-up, so run 1 is not flattered by the pool's start-up. Measured with this row's
    // pairing over four minutes of load: against a fresh pool, the long-lived one reads ~1.04 in its
    // first 10 s and 0.90-0.98 from then on, with no trend — a start-up phase, not the degradation
    // this row looks for.
    await ctx.load({ url: server.url, connections: DB_POOL_MAX, seconds: quick ? 2 : 10 });
    // Per run: requests served by the long-lived route in its measured seconds, those seconds, the
    // paired ratios, and the server CPU those seconds took.
    const runs: { requests: number; seconds: number; ratios: number[]; cpuMicros: number }[] = [];
    let errors = 0;
    for (let run = 0; run < STABILITY_RUNS; run++) {
      // The reference: the same route on a pool created for this run, which cannot have degraded.
      // Each second of the long-lived route is paired with a second of the reference next to it, so
      // what the shared machine does meanwhile (consecutive 10 s runs of one route differ by up to
      // ±15 % with no change in server CPU per request) moves both alike and leaves the ratio.
      const referenceSql = baselinePool(database.url);
      const reference = await ctx.serve(dbQueryApp(referenceSql).fetch);
      const current = { requests: 0, seconds: 0, ratios: [] as number[], cpuMicros: 0 };
      try {
        await ctx.load({ url: reference.url, connections: DB_POOL_MAX, seconds: 1 });
        for (let slice = 0; slice < slices; slice++) {
          const before = process.cpuUsage();
          const result = await ctx.load({ url: server.url, connections: DB_POOL_MAX, seconds: 1 });
          const used = process.cpuUsage(before);
          const fresh = await ctx.load({ url: reference.url, connections: DB_POOL_MAX, seconds: 1 });
          current.requests += result.requestsPerSecond; // a 1 s load: its rate is its count
          current.seconds += 1;
          current.cpuMicros += used.user + used.system;
          current.ratios.push(result.requestsPerSecond / fresh.requestsPerSecond);
          errors += result.errors + result.non2xx + fresh.errors + fresh.non2xx;
        }
      } finally {
        await reference.close();
        await referenceSql.end({ timeout: 5 });
      }
      runs.push(current);
    }
    // Each run's standing against its reference: the median of its paired seconds.
    const standing = runs.map((r) => median(r.ratios));
    const ratio = standing[standing.length - 1]! / standing[0]!;
    const averages = runs.map((r) => r.requests / r.seconds);
    rows.push({
      scenario: `driver stability: db query ${STABILITY_RUNS} x ${slices} s`,
      throughput: averages[averages.length - 1]!,
      unit: "req/s",
      ratio: { against: "run 1", value: ratio },
      target: `>= ${(1 - MAX_DROP).toFixed(2)}x run 1`,
      pass: ratio >= 1 - MAX_DROP && errors === 0,
      note: [
        `against a fresh pool, second by second: ${standing.map((s) => s.toFixed(2)).join(" / ")}`,
        `drop ${((1 - ratio) * 100).toFixed(1)} %`,
        `runs ${averages.map((a) => Math.round(a)).join(" / ")} req/s`,
        `server CPU ${runs.map((r) => Math.round(r.cpuMicros / Math.max(1, r.requests))).join(" / ")} µs/req`,
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
