/**
 * `npm run bench`: starts a throwaway PostgreSQL, measures the two baselines, runs every
 * `bench/scenarios/*.ts` in name order, and prints one table. A scenario that throws or overruns its
 * time becomes a row saying so; the table still prints and the run still ends by itself.
 *
 *   BENCH_SECONDS=5    default duration of one load (1..120)
 *   BENCH_QUICK=1      short driver-stability runs (2 s instead of 10 s), marked in the table
 *   BENCH_ONLY=15,20   run only the scenario files whose name contains one of these texts (baselines always run)
 *
 * A scenario file may export `timeoutMs` (default 240 s) when it needs longer.
 * Exit code 1 when a scenario failed to run; targets missed are shown in the `pass` column.
 */
import { readdir } from "node:fs/promises";
import { basename, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  bareApp,
  baselinePool,
  BenchResources,
  createContext,
  DB_POOL_MAX,
  dbQueryApp,
  load,
  secondsFromEnv,
  serve,
} from "./harness.js";
import { formatTable, loadAverage, machineLine } from "./table.js";
import type { BenchContext, HttpResult, Row, Scenario } from "./types.js";

const SCENARIOS_DIR = fileURLToPath(new URL("./scenarios", import.meta.url));
const SCENARIO_TIMEOUT_MS = 240_000;

const seconds = secondsFromEnv(process.env);
const quick = process.env.BENCH_QUICK === "1";
const only = process.env.BENCH_ONLY;
const resources = new BenchResources();
const rows: Row[] = [];
const loadAtStart = loadAverage();
let failures = 0;

function failedRow(scenario: string, error: unknown): Row {
  failures++;
  const message = error instanceof Error ? error.message : String(error);
  return { scenario, throughput: Number.NaN, unit: "req/s", pass: false, note: `FAILED: ${message.split("\n")[0]}` };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Short unmeasured load first, so the JIT and the pool are warm before the measured one. */
async function warmThenLoad(url: string, connections: number): Promise<HttpResult> {
  await load({ url, connections, seconds: 1 });
  return load({ url, connections, seconds });
}

async function measureBaselines(): Promise<BenchContext["baselines"]> {
  const bareServer = await serve(bareApp().fetch);
  let bare: HttpResult;
  try {
    bare = await warmThenLoad(bareServer.url, 50);
  } finally {
    await bareServer.close();
  }

  const database = await resources.freshDatabase();
  const sql = baselinePool(database.url);
  const dbServer = await serve(dbQueryApp(sql).fetch);
  try {
    // In-flight requests = connections = pool size: postgres.js degrades when queries queue beyond
    // its pool in a long-lived process (porsager/postgres#747).
    const dbQuery = await warmThenLoad(dbServer.url, DB_POOL_MAX);
    return { bare, dbQuery };
  } finally {
    await dbServer.close();
    await sql.end({ timeout: 5 });
    await database.drop();
  }
}

async function scenarioFiles(): Promise<string[]> {
  const names = (await readdir(SCENARIOS_DIR)).filter((n) => n.endsWith(".ts") && !n.endsWith(".d.ts")).sort();
  const wanted = only?.split(",").filter(Boolean);
  return names
    .filter((n) => !wanted || wanted.some((w) => n.includes(w)) || n.startsWith("10-"))
    .map((n) => join(SCENARIOS_DIR, n));
}

async function main(): Promise<void> {
  const started = performance.now();
  process.stderr.write("bench: starting PostgreSQL\n");
  await resources.start();
  process.stderr.write(`bench: measuring baselines (${seconds} s each)\n`);
  const baselines = await measureBaselines();
  const ctx = createContext(resources, seconds, baselines, quick);

  for (const file of await scenarioFiles()) {
    const name = basename(file, ".ts");
    process.stderr.write(`bench: ${name}\n`);
    try {
      const module = (await import(pathToFileURL(file).href)) as { default?: Scenario; timeoutMs?: number };
      if (typeof module.default !== "function") throw new Error("does not default-export a scenario function");
      const produced = await withTimeout(module.default(ctx), module.timeoutMs ?? SCENARIO_TIMEOUT_MS, name);
      if (!Array.isArray(produced) || produced.length === 0) throw new Error("returned no rows");
      rows.push(...produced);
    } catch (error) {
      rows.push(failedRow(name, error));
    }
  }

  const missed = rows.filter((r) => r.pass === false).length - failures;
  const elapsed = Math.round((performance.now() - started) / 1000);
  process.stdout.write(
    `\n${formatTable(rows)}\n\n${machineLine(seconds, quick, loadAtStart)}\n` +
      `${rows.length} rows, ${missed} missed target, ${failures} failed to run; ${elapsed} s\n`,
  );
}

let exitCode = 0;
try {
  await main();
  if (failures > 0) exitCode = 1;
} catch (error) {
  // Start-up or baselines failed: there is nothing to compare against, but say so in the table.
  rows.push(failedRow("bench", error));
  process.stdout.write(`\n${formatTable(rows)}\n\n${machineLine(seconds, quick, loadAtStart)}\n`);
  exitCode = 1;
} finally {
  await resources.release();
}
// Scenarios may leave timers or sockets behind; the run ends here regardless.
process.exit(exitCode);
