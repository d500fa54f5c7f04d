/**
 * The pieces of a BenchContext: a throwaway PostgreSQL, servers on 127.0.0.1, HTTP load from
 * autocannon in a child process (so the load generator does not share the server's event loop),
 * in-process timing, and the two baselines every ratio is measured against.
 */
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { serve as serveNode } from "@hono/node-server";
import { Hono } from "hono";
import postgres from "postgres";
import { createIsolatedDatabase, startTestDatabase, type TestDatabase } from "../src/testing/database.js";
import type { BenchContext, HttpResult, LoadOptions, OpsResult } from "./types.js";

const require = createRequire(import.meta.url);
const AUTOCANNON_CLI = require.resolve("autocannon");

/** The only host load may target: a benchmark never sends traffic off this machine. */
export const LOAD_HOST = "127.0.0.1";
/** Pool size of the database baseline; its load keeps this many requests in flight, no more. */
export const DB_POOL_MAX = 10;

export function secondsFromEnv(env: Record<string, string | undefined>): number {
  const raw = env.BENCH_SECONDS;
  if (raw === undefined || raw === "") return 5;
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds < 1 || seconds > 120) {
    throw new Error(`BENCH_SECONDS must be a number of seconds between 1 and 120, got '${raw}'`);
  }
  return seconds;
}

function assertLocal(url: string): void {
  const host = new URL(url).hostname;
  if (host !== LOAD_HOST) throw new Error(`Benchmark load only targets ${LOAD_HOST}; refusing ${url}`);
}

interface AutocannonJson {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}

/** Runs autocannon's CLI against a 127.0.0.1 URL for a bounded time and returns its summary. */
export async function load(options: LoadOptions & { seconds: number }): Promise<HttpResult> {
  assertLocal(options.url);
  const connections = options.connections ?? 50;
  const args = [AUTOCANNON_CLI, "--json", "-c", String(connections), "-d", String(options.seconds), "-t", "10"];
  if (options.method) args.push("-m", options.method);
  for (const [name, value] of Object.entries(options.headers ?? {})) args.push("-H", `${name}=${value}`);
  if (options.body !== undefined) args.push("-b", options.body);
  args.push(options.url);

  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  // autocannon stops itself after `seconds`; this only guards against a stuck child.
  const guard = setTimeout(() => child.kill("SIGKILL"), (options.seconds + 30) * 1000);
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  clearTimeout(guard);
  if (code !== 0) throw new Error(`autocannon exited with ${code}: ${stderr.trim().split("\n").slice(-3).join(" ")}`);
  const result = JSON.parse(stdout) as AutocannonJson;
  return {
    requestsPerSecond: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

/** A percentile of sorted samples (nearest rank). */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

const MAX_SAMPLES = 1_000_000;

/** Calls `fn` for `seconds` (or `iterations` times) with `concurrency` calls in flight. */
export async function measure(
  fn: () => unknown,
  options: { seconds?: number; iterations?: number; concurrency?: number; defaultSeconds: number },
): Promise<OpsResult> {
  const concurrency = Math.max(1, options.concurrency ?? 1);
  const deadline = options.iterations === undefined ? performance.now() + (options.seconds ?? options.defaultSeconds) * 1000 : Infinity;
  let remaining = options.iterations ?? Infinity;
  // Reservoir sampling keeps latency percentiles honest without unbounded memory.
  const samples = new Float64Array(MAX_SAMPLES);
  let count = 0;
  const record = (ms: number) => {
    if (count < MAX_SAMPLES) samples[count] = ms;
    else {
      const slot = Math.floor(Math.random() * (count + 1));
      if (slot < MAX_SAMPLES) samples[slot] = ms;
    }
    count++;
  };
  const started = performance.now();
  const worker = async () => {
    while (remaining > 0 && performance.now() < deadline) {
      remaining--;
      const t0 = performance.now();
      await fn();
      record(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - started) / 1000;
  const sorted = samples.slice(0, Math.min(count, MAX_SAMPLES)).sort();
  return { opsPerSecond: count / elapsed, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), count };
}

export interface Served {
  url: string;
  close(): Promise<void>;
}

/** Serves a fetch handler on 127.0.0.1 at a port the OS picks. */
export async function serve(fetch: (request: Request) => Response | Promise<Response>): Promise<Served> {
  const server = await new Promise<ReturnType<typeof serveNode>>((resolve) => {
    const s = serveNode({ fetch, hostname: LOAD_HOST, port: 0 }, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${LOAD_HOST}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ("closeAllConnections" in server) (server as { closeAllConnections(): void }).closeAllConnections();
      }),
  };
}

/** The bare baseline: Hono answering JSON, no database. */
export function bareApp(): Hono {
  const app = new Hono();
  app.get("/", (c) => c.json({ ok: true }));
  return app;
}

/** The database baseline: Hono doing one raw postgres.js query per request. */
export function dbQueryApp(sql: postgres.Sql): Hono {
  const app = new Hono();
  app.get("/", async (c) => {
    const [row] = await sql<{ one: number }[]>`select 1 as one`;
    return c.json({ one: row!.one });
  });
  return app;
}

/** A postgres.js pool the size of the database baseline's. */
export function baselinePool(url: string): postgres.Sql {
  return postgres(url, { max: DB_POOL_MAX, onnotice: () => {} });
}

/** Everything a run owns, released at the end even when a scenario forgot to. */
export class BenchResources {
  private readonly cleanups: (() => Promise<unknown>)[] = [];
  private database?: TestDatabase;

  async start(): Promise<TestDatabase> {
    this.database = await startTestDatabase();
    return this.database;
  }

  track<T extends { close?: () => Promise<unknown>; drop?: () => Promise<unknown> }>(resource: T): T {
    let done = false;
    const release = async () => {
      if (done) return;
      done = true;
      await (resource.close ?? resource.drop)?.call(resource);
    };
    this.cleanups.push(release);
    if (resource.close) resource.close = release;
    if (resource.drop) resource.drop = release;
    return resource;
  }

  async freshDatabase() {
    if (!this.database) throw new Error("The benchmark database is not started");
    const db = await createIsolatedDatabase(this.database);
    return this.track({ url: db.url, drop: () => db.drop() });
  }

  /** Releases everything left open, then stops PostgreSQL; bounded so the run always ends. */
  async release(timeoutMs = 30_000): Promise<void> {
    const work = (async () => {
      for (const cleanup of this.cleanups.reverse()) await cleanup().catch(() => undefined);
      await this.database?.stop();
    })();
    await Promise.race([work, new Promise((resolve) => setTimeout(resolve, timeoutMs).unref())]);
  }
}

export function createContext(
  resources: BenchResources,
  seconds: number,
  baselines: BenchContext["baselines"],
): BenchContext {
  return {
    seconds,
    baselines,
    freshDatabase: () => resources.freshDatabase(),
    serve: async (fetch) => resources.track(await serve(fetch)),
    load: (options) => load({ ...options, seconds: options.seconds ?? seconds }),
    measure: (fn, options = {}) => measure(fn, { ...options, defaultSeconds: seconds }),
  };
}
