/**
 * The pieces of a BenchContext: a throwaway PostgreSQL, servers on 127.0.0.1, HTTP load from
 * autocannon in a child process (so the load generator does not share the server's event loop; one
 * process for the whole run, see bench/load-generator.mjs),
 * in-process timing, and the two baselines every ratio is measured against.
 */
import { fork, type ChildProcess } from "node:child_process";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { serve as serveNode } from "@hono/node-server";
import { Hono } from "hono";
import postgres from "postgres";
import { createIsolatedDatabase, startTestDatabase, type TestDatabase } from "../src/testing/database.js";
import { startServerProcess } from "./server-process.js";
import type { BenchContext, HttpResult, LoadOptions, MixedLoadOptions, MixedLoadResult, OpsResult } from "./types.js";

const LOAD_GENERATOR = fileURLToPath(new URL("./load-generator.mjs", import.meta.url));

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

interface GeneratorReply {
  requests?: number;
  seconds?: number;
  p50Ms?: number;
  p99Ms?: number;
  errors?: number;
  non2xx?: number;
  statuses?: Record<string, number>;
  mixed?: MixedLoadResult;
  error?: string;
}

/**
 * The load generator (bench/load-generator.mjs): one child process for the whole run, started on the
 * first load. It does not keep the bench alive, and it exits when the bench does.
 */
let generator: ChildProcess | undefined;
let generatorBusy: Promise<unknown> = Promise.resolve();

function loadGenerator(): ChildProcess {
  if (generator && generator.exitCode === null && generator.connected) return generator;
  const child = fork(LOAD_GENERATOR, [], { stdio: ["ignore", "ignore", "pipe", "ipc"] });
  child.unref();
  (child.channel as { unref?: () => void } | undefined)?.unref?.();
  (child.stderr as { unref?: () => void } | null)?.unref?.();
  generator = child;
  return child;
}

/** Stops the load generator (the end of a run). */
export function stopLoadGenerator(): void {
  generator?.kill();
  generator = undefined;
}

/** Sends one message to the load generator and waits for its answer, at most `seconds + 30` s. */
async function ask(message: object, seconds: number): Promise<GeneratorReply> {
  const child = loadGenerator();
  let stderr = "";
  const onStderr = (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000));
  child.stderr?.on("data", onStderr);
  let guard: NodeJS.Timeout | undefined;
  try {
    const reply = await new Promise<GeneratorReply>((resolve, reject) => {
      const onExit = (code: number | null) =>
        reject(new Error(`the load generator exited with ${code}: ${stderr.trim().split("\n").slice(-3).join(" ")}`));
      child.once("exit", onExit);
      child.once("message", (answer: GeneratorReply) => {
        child.off("exit", onExit);
        resolve(answer);
      });
      // Loads stop themselves after `seconds`; this only guards against a stuck generator.
      guard = setTimeout(
        () => {
          child.kill("SIGKILL");
          reject(new Error(`the load generator did not answer within ${seconds + 30} s`));
        },
        (seconds + 30) * 1000,
      );
      child.send(message);
    });
    if (reply.error !== undefined) throw new Error(`the load generator failed: ${reply.error}`);
    return reply;
  } finally {
    clearTimeout(guard);
    child.stderr?.off("data", onStderr);
  }
}

async function runLoad(options: LoadOptions & { seconds: number }): Promise<HttpResult> {
  const reply = await ask(
    {
      url: options.url,
      connections: options.connections ?? 50,
      seconds: options.seconds,
      amount: options.amount,
      timeoutSeconds: options.timeoutSeconds,
      method: options.method,
      headers: options.headers,
      body: options.body,
      vary: options.vary,
    },
    options.seconds,
  );
  return {
    requestsPerSecond: reply.requests! / reply.seconds!,
    p50Ms: reply.p50Ms!,
    p99Ms: reply.p99Ms!,
    errors: reply.errors!,
    non2xx: reply.non2xx!,
    statuses: reply.statuses ?? {},
  };
}

/** One generator at a time: a load asked for while another runs waits for it. */
function queued<T>(work: () => Promise<T>): Promise<T> {
  const result = generatorBusy.then(work);
  generatorBusy = result.catch(() => undefined);
  return result;
}

/**
 * Runs autocannon against a 127.0.0.1 URL for a bounded time and returns its summary. Loads run one at
 * a time: one that is asked for while another runs waits for it.
 */
export function load(options: LoadOptions & { seconds: number }): Promise<HttpResult> {
  assertLocal(options.url);
  return queued(() => runLoad(options));
}

/**
 * Mixed traffic (bench/mixed-load.mjs) against a 127.0.0.1 server for a bounded time: every flow's
 * connections at once, each request timed and its answer counted by status.
 */
export function mixedLoad(options: MixedLoadOptions): Promise<MixedLoadResult> {
  assertLocal(options.base);
  const timeoutSeconds = Math.ceil((options.timeoutMs ?? 10_000) / 1000);
  return queued(async () => (await ask({ mixed: options }, options.seconds + timeoutSeconds)).mixed!);
}

/** The middle value (the upper middle one of an even count). */
export const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

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
  const deadline =
    options.iterations === undefined
      ? performance.now() + (options.seconds ?? options.defaultSeconds) * 1000
      : Infinity;
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
    stopLoadGenerator();
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
  quick: boolean,
): BenchContext {
  return {
    seconds,
    quick,
    baselines,
    freshDatabase: () => resources.freshDatabase(),
    serve: async (fetch) => resources.track(await serve(fetch)),
    load: (options) => load({ ...options, seconds: options.seconds ?? seconds }),
    mixedLoad,
    startServer: async (options) => {
      const server = await startServerProcess(options);
      resources.track({ close: () => server.stop() });
      return server;
    },
    measure: (fn, options = {}) => measure(fn, { ...options, defaultSeconds: seconds }),
  };
}
