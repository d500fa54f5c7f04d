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
  /** Responses per status code. */
  statuses: Record<string, number>;
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
  /**
   * Send this many requests and report the rate over the time they took, instead of loading for
   * `seconds` (which then only bounds the wait). For slow requests a fixed window would cut off.
   */
  amount?: number;
  /** A request not answered within this counts as an error. Default 10. */
  timeoutSeconds?: number;
  /**
   * Makes each request distinct: `clientAddressHeader` gets a new IPv4 address per request (a
   * per-client rate limit then sees many clients; only for a server that trusts the header), and
   * every `uniqueToken` in the body becomes a value unique in the run (a new email per sign-up).
   */
  vary?: { clientAddressHeader?: string; uniqueToken?: string };
}

/** One request of a mixed-traffic flow; see bench/mixed-load.mjs for the {u}, {ip}, {var} templates. */
export interface MixedStep {
  label: string;
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** Variables for later steps of the same pass, from fields of this step's JSON response. */
  capture?: Record<string, string>;
}

export interface MixedFlow {
  name: string;
  connections: number;
  steps: MixedStep[];
}

export interface MixedLoadOptions {
  /** http://127.0.0.1:<port> */
  base: string;
  seconds: number;
  /** A request not answered within this is a timeout (default 10 s). */
  timeoutMs?: number;
  flows: MixedFlow[];
}

export interface MixedStepResult {
  count: number;
  statuses: Record<string, number>;
  socketErrors: number;
  timeouts: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface MixedLoadResult {
  seconds: number;
  byLabel: Record<string, MixedStepResult>;
  completedPerSecond: number[];
}

/** A server in a child process of its own (as `npm start` runs it), on 127.0.0.1. */
export interface ServerProcess {
  url: string;
  pid: number;
  /** Resident set size of the server process now, in bytes (Linux /proc). */
  rssBytes(): Promise<number>;
  /** Its CPU time so far (user + system), in microseconds (Linux /proc). */
  cpuMicros(): Promise<number>;
  /**
   * Its main thread (the event loop) so far, in microseconds: on a CPU, and runnable but waiting for
   * one — on a shared machine, the time other processes took from it (Linux /proc schedstat).
   */
  mainThreadMicros(): Promise<{ onCpu: number; waiting: number }>;
  /** Resolves once the server has used under 5 % of a core for 250 ms (at most `maxMs`, default 30 s). */
  settle(maxMs?: number): Promise<void>;
  /** The last few KB of its stderr. */
  stderr(): string;
  /** Its last 20 warning and error log lines (JSON lines on stdout). */
  problems(): string[];
  /** SIGTERM, then SIGKILL if it has not exited within the grace period. */
  stop(): Promise<void>;
}

export interface ServerProcessOptions {
  /** Entry file relative to the repository root, run as `node --import tsx <entry>`. */
  entry: string;
  /** Environment on top of a minimal one (PATH, HOME, TMPDIR): the server's whole configuration. */
  env: Record<string, string>;
  /** Answered 200 once the server is up. Default /health. */
  readyPath?: string;
}

export interface BenchContext {
  /** Owner URL of a fresh database cloned from the migrated, seeded template; commits allowed. */
  freshDatabase(): Promise<{ url: string; drop(): Promise<void> }>;
  /** Serves a fetch handler on 127.0.0.1:<free port>. */
  serve(fetch: (request: Request) => Response | Promise<Response>): Promise<{ url: string; close(): Promise<void> }>;
  /** HTTP load from autocannon against a 127.0.0.1 URL. */
  load(options: LoadOptions): Promise<HttpResult>;
  /** Several request flows at once against a 127.0.0.1 server, from the load generator process. */
  mixedLoad(options: MixedLoadOptions): Promise<MixedLoadResult>;
  /** Starts a server in a child process on a free 127.0.0.1 port; stopped at the end of the run at the latest. */
  startServer(options: ServerProcessOptions): Promise<ServerProcess>;
  /** Calls `fn` for `seconds` (or `iterations` times) with `concurrency` in flight, timing each call. */
  measure(
    fn: () => unknown,
    options?: { seconds?: number; iterations?: number; concurrency?: number },
  ): Promise<OpsResult>;
  /** Measured first in the same run: a bare Hono JSON route, and a Hono route doing one postgres.js query. */
  baselines: { bare: HttpResult; dbQuery: HttpResult };
  /** Default duration of one load, in seconds (BENCH_SECONDS, default 5). */
  seconds: number;
  /** BENCH_QUICK=1: shorter runs for development, marked in the rows' notes. */
  quick: boolean;
}

export interface Row {
  scenario: string;
  throughput: number;
  unit: "ratio" | "req/s" | "ops/s" | "rows/s" | "emails/s" | "queries" | "checks/s" | "MB/s" | "MiB" | "ms" | "s";
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
