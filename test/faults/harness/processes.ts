/**
 * Real processes for the fault scenarios: PostgreSQL clusters (copies of the golden one, see
 * global-setup.ts) that a scenario stops, restarts, freezes and thaws, and the real `src/server.ts`.
 * Everything started here is registered with a `Cleanup` that kills it by pid even when the scenario
 * fails; the global teardown kills by pid whatever is left under the run's directory.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  freePort,
  startEmbeddedPostgres,
  stopPostmaster,
  type EmbeddedPostgresHandle,
} from "../../../src/db/embedded.js";

export const REPO_ROOT = fileURLToPath(new URL("../../..", import.meta.url));
/** The database the golden cluster holds, migrated and seeded; also the embedded default's name. */
export const GOLDEN_DATABASE = "sv_sdk";

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Clean-up steps run last-in first-out; each one runs even when an earlier one failed. */
export class Cleanup {
  #steps: { name: string; run: () => unknown }[] = [];

  defer(name: string, run: () => unknown): void {
    this.#steps.push({ name, run });
  }

  async run(): Promise<void> {
    const failures: string[] = [];
    for (const step of this.#steps.reverse()) {
      try {
        await step.run();
      } catch (error) {
        failures.push(`${step.name}: ${(error as Error).message}`);
      }
    }
    this.#steps = [];
    if (failures.length > 0) throw new Error(`clean-up failed — ${failures.join("; ")}`);
  }
}

/** Pids of live processes matching `matches` (one that exits meanwhile is skipped). */
function processes(matches: (pid: number) => boolean): number[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => {
      try {
        return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8")) && matches(pid);
      } catch {
        return false;
      }
    });
}

/** Every process working in `dir` or below it (a PostgreSQL process works in its data directory). */
export function processesUnder(dir: string): number[] {
  return processes((pid) => {
    const cwd = readlinkSync(`/proc/${pid}/cwd`);
    return cwd === dir || cwd.startsWith(`${dir}/`);
  });
}

const signal = (pid: number, name: NodeJS.Signals) => {
  try {
    process.kill(pid, name);
  } catch {
    // gone already
  }
};

/**
 * The safety net of the global teardown: SIGKILL, by pid, every process working under `root` (the
 * clusters, frozen or not) and every server process this run registered that is still running.
 */
export async function killLeftovers(root: string): Promise<string[]> {
  const killed: string[] = [];
  const registry = join(root, "pids");
  for (const name of await readdir(registry).catch(() => [] as string[])) {
    const pid = Number(name);
    const expected = await readFile(join(registry, name), "utf8").catch(() => "");
    let cmdline = "";
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
      continue;
    }
    // Only the process we started, not another one that reused its pid.
    if (expected && cmdline.includes(expected)) {
      signal(pid, "SIGKILL");
      killed.push(`server ${pid}`);
    }
  }
  for (const pid of processesUnder(root)) {
    signal(pid, "SIGCONT");
    signal(pid, "SIGKILL");
    killed.push(`postgres ${pid}`);
  }
  return killed;
}

export interface Cluster {
  /** Owner (superuser) URL of the migrated database. */
  url: string;
  urlFor(database: string): string;
  port: number;
  /** The cluster's data directory (every PostgreSQL process of it works there). */
  clusterDir: string;
  /** The postmaster's pid right now. */
  pid(): number;
  /** The postmaster and its children, by pid. */
  processes(): number[];
  /** Fast shutdown (sessions are ended), waiting until the postmaster is gone. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data; resolves once it accepts connections. */
  start(): Promise<void>;
  /** SIGSTOP to the postmaster and every backend: the database answers nothing and refuses nothing. */
  freeze(): number[];
  /** SIGCONT to the processes `freeze` stopped. */
  thaw(): void;
}

/**
 * A cluster of its own for a scenario: a copy of the golden data directory under `root`, started on
 * a free port of 127.0.0.1. `cleanup` thaws, stops and removes it.
 */
export async function startCluster(root: string, golden: string, name: string, cleanup: Cleanup): Promise<Cluster> {
  const dataDir = join(root, `${name}-${process.pid}-${Date.now().toString(36)}`);
  await copyTree(golden, dataDir);
  const clusterDir = join(dataDir, "cluster");
  const port = await freePort();
  let handle: EmbeddedPostgresHandle | undefined;
  let frozen: number[] = [];
  const start = async () => {
    handle = await startEmbeddedPostgres({ dataDir, port, database: GOLDEN_DATABASE });
  };
  cleanup.defer(`cluster ${name}`, async () => {
    for (const pid of frozen) signal(pid, "SIGCONT");
    if (handle) await stopPostmaster(handle.pid, 5000);
    for (const pid of processesUnder(dataDir)) signal(pid, "SIGKILL");
    await rm(dataDir, { recursive: true, force: true });
  });
  await start();
  const cluster: Cluster = {
    url: handle!.url,
    urlFor: (database) => handle!.urlFor(database),
    port,
    clusterDir,
    pid: () => handle!.pid,
    processes: () => processesUnder(clusterDir),
    async stop() {
      await handle!.stop({ timeoutMs: 10_000 });
    },
    start,
    freeze() {
      const postmaster = handle!.pid;
      // The postmaster first: stopped, it forks no new backend while the others are being stopped.
      signal(postmaster, "SIGSTOP");
      frozen = [postmaster, ...cluster.processes().filter((pid) => pid !== postmaster)];
      for (const pid of frozen) signal(pid, "SIGSTOP");
      return frozen;
    },
    thaw() {
      for (const pid of frozen) signal(pid, "SIGCONT");
      frozen = [];
    },
  };
  return cluster;
}

/** `cp -a`: PostgreSQL checks its files' owner (a `postgres` system user when we are root) and modes. */
export async function copyTree(from: string, to: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn("cp", ["-a", from, to], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`cp -a ${from} ${to} exited ${code}: ${stderr}`)),
    );
    child.on("error", reject);
  });
}

export interface ServerProcess {
  child: ChildProcess;
  pid: number;
  port: number;
  url: string;
  /** stdout and stderr so far. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Whether it is still running. */
  alive(): boolean;
}

/**
 * Runs the real server, `node --import tsx src/server.ts`, as `npm start` does, with only `env` (plus
 * PATH and HOME), and resolves once `/ready` answers 200. `cleanup` SIGKILLs it if it still runs.
 */
export async function startServerProcess(
  root: string,
  env: Record<string, string>,
  cleanup: Cleanup,
  readyWithinMs = 60_000,
): Promise<ServerProcess> {
  const port = Number(env.PORT ?? (await freePort()));
  const child = spawn(process.execPath, ["--import", "tsx", "src/server.ts"], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      HOST: "127.0.0.1",
      LOG_LEVEL: "warn",
      ...env,
      PORT: String(port),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  let running = true;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, sig) => {
      running = false;
      resolve({ code, signal: sig });
    }),
  );
  const pid = child.pid!;
  await mkdir(join(root, "pids"), { recursive: true });
  await writeFile(join(root, "pids", String(pid)), "src/server.ts");
  cleanup.defer(`server ${pid}`, async () => {
    if (running) {
      signal(pid, "SIGKILL");
      await exited;
    }
    await rm(join(root, "pids", String(pid)), { force: true });
  });
  const server: ServerProcess = {
    child,
    pid,
    port,
    url: `http://127.0.0.1:${port}`,
    output: () => output,
    exited,
    alive: () => running,
  };
  const deadline = Date.now() + readyWithinMs;
  while (Date.now() < deadline) {
    if (!running) throw new Error(`the server exited before it was ready:\n${output}`);
    const ready = await fetch(`${server.url}/ready`).then(
      (res) => (void res.body?.cancel(), res.status === 200),
      () => false,
    );
    if (ready) return server;
    await sleep(200);
  }
  throw new Error(`the server's /ready did not answer 200 within ${readyWithinMs / 1000} s:\n${output}`);
}

/** Resolves with the exit, or with undefined once `ms` have passed. */
export async function exitWithin(server: ServerProcess, ms: number) {
  return Promise.race([server.exited, sleep(ms).then(() => undefined)]);
}
