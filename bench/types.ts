/**
 * The benchmark contract. `npm run bench` (bench/run.ts) measures the baselines first, then loads every
 * `bench/scenarios/*.ts` in name order; each default-exports `(ctx) => Promise<Row[]>`. All rows of one
 * run print as one table, so ratios compare numbers measured minutes apart on the same machine.
 * Load only ever targets 127.0.0.1, is bounded in time, and stops by itself.
 */
export interface HttpResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
}

export interface OpsResult {
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  count: number;
}

export interface LoadOptions {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Default: BENCH_SECONDS or 5. */
  seconds?: number;
  /** Default 50. Keep in-flight DB queries within the pool (postgres.js #747). */
  connections?: number;
}

export interface BenchContext {
  /** Owner URL of a fresh database cloned from the migrated, seeded template; commits allowed. */
  freshDatabase(): Promise<{ url: string; drop(): Promise<void> }>;
  /** Serves a fetch handler on 127.0.0.1:<free port>. */
  serve(fetch: (request: Request) => Response | Promise<Response>): Promise<{ url: string; close(): Promise<void> }>;
  /** HTTP load from autocannon against a 127.0.0.1 URL. */
  load(options: LoadOptions): Promise<HttpResult>;
  /** Calls `fn` for `seconds` (or `iterations` times) with `concurrency` in flight, timing each call. */
  measure(
    fn: () => unknown,
    options?: { seconds?: number; iterations?: number; concurrency?: number },
  ): Promise<OpsResult>;
  /** Measured first in the same run: a bare Hono JSON route, and a Hono route doing one postgres.js query. */
  baselines: { bare: HttpResult; dbQuery: HttpResult };
  /** Default duration of one load, in seconds (BENCH_SECONDS, default 5). */
  seconds: number;
}

export interface Row {
  scenario: string;
  throughput: number;
  unit: "req/s" | "ops/s" | "rows/s" | "emails/s" | "queries" | "checks/s";
  p50Ms?: number;
  p99Ms?: number;
  /** Ratio against a baseline or a sibling row measured in the same run. */
  ratio?: { against: string; value: number };
  /** e.g. ">= 0.8x db-query", "<= 1.3x insert", "0 queries". */
  target?: string;
  pass?: boolean;
  note?: string;
}

export type Scenario = (ctx: BenchContext) => Promise<Row[]>;
