/**
 * `npm start`: configuration from the environment, the embedded PostgreSQL when no DATABASE_URL is
 * given, migrations, seeds, then the API.
 *
 * On SIGTERM or SIGINT — from the start, so a signal during start-up is handled too — it shuts down
 * in order within SHUTDOWN_TIMEOUT_MS: the start-up step in progress ends, the HTTP server stops
 * accepting and drains (requests in flight finish; after half the timeout, the connections left are
 * closed), background work and pools stop, and the embedded PostgreSQL — in a session of its own,
 * so a terminal's Ctrl-C reaches only us — stops last, with time kept for it. A step that overruns is
 * left behind and the exit code is 1; the cluster is stopped either way.
 *
 * A database other than the control plane (main) that is down does not stop the start: it is
 * reported, its tenants get 503 until it answers (the router probes it), and the start-up work it
 * missed — its migrations, the audit partitions — is retried in the background until done.
 */
import { createApp } from "./app.js";
import { writeBanner } from "./cli/banner.js";
import { onShutdownSignal, shutdownInOrder } from "./cli/shutdown.js";
import { loadConfigOrExit } from "./config.js";
import { resolveDatabase } from "./db/connect.js";
import type { EmbeddedPostgresHandle } from "./db/embedded.js";
import { describeMigration, isUnreachable, migrateTopology } from "./db/migrate.js";
import type { Topology } from "./db/topology.js";
import { startServer, type RunningServer } from "./http/serve.js";
import { createSdk, type Sdk } from "./sdk.js";
import { createLogger, prettyOutput } from "./logger.js";
import { sdkOptionsFromConfig } from "./sdk-from-config.js";

const config = loadConfigOrExit(process.env);
// JSON lines on stdout; pretty ones for a person at a terminal in development (or LOG_FORMAT=pretty).
const logger = createLogger({
  level: config.logLevel,
  pretty: prettyOutput({
    format: config.logFormat,
    environment: config.environment,
    isTTY: process.stdout.isTTY === true,
  }),
});
const timeoutMs = config.shutdownTimeoutMs;
const started = performance.now();

let stopping = false;
let embedded: EmbeddedPostgresHandle | undefined;
let sdk: Sdk | undefined;
let http: RunningServer | undefined;
const retries = new Set<ReturnType<typeof setTimeout>>();

/** How often start-up work that a down database made fail is tried again. */
const RETRY_EVERY_MS = 5_000;

/** Runs `work` now and, while it fails, again every RETRY_EVERY_MS until it succeeds or we stop. */
async function untilDone(what: string, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    if (stopping) return;
    logger.warn(`${what} failed; retrying in the background`, {
      error: error instanceof Error ? error.message : String(error),
      retryInMs: RETRY_EVERY_MS,
    });
    const timer = setTimeout(() => {
      retries.delete(timer);
      if (!stopping) void untilDone(what, work);
    }, RETRY_EVERY_MS);
    timer.unref();
    retries.add(timer);
  }
}

/** Migrates the databases that were unreachable at start-up, once they answer. */
function migrateLater(topology: Topology, names: string[]): () => Promise<void> {
  let pending = names;
  return async () => {
    const databases = Object.fromEntries(pending.map((name) => [name, topology.databases[name]!]));
    const reports = await migrateTopology({ ...topology, databases }, [], { unreachable: "report" });
    for (const report of reports) if (!isUnreachable(report)) logger.info(describeMigration(report));
    pending = reports.filter(isUnreachable).map((r) => r.database);
    if (pending.length > 0) throw new Error(`still unreachable: ${pending.join(", ")}`);
  };
}

/** Start-up, step by step; it stops between steps once a shutdown has begun. */
async function start(): Promise<void> {
  const database = await resolveDatabase(config, (message) => logger.info(message));
  embedded = database.embedded;
  if (stopping) return;
  const reports = await migrateTopology(database.topology, [], {
    unreachable: "report",
    onUnreachable: (name, reason) =>
      logger.warn("a database is unreachable: starting without it", { database: name, reason }),
  });
  for (const report of reports) logger.info(describeMigration(report));
  const skipped = reports.filter(isUnreachable).map((r) => r.database);
  if (stopping) return;

  sdk = createSdk(await sdkOptionsFromConfig(config, database.topology, logger));
  await sdk.seed();
  await sdk.auth.listen();
  const running = sdk;
  if (skipped.length > 0)
    void untilDone("migrating the databases unreachable at start-up", migrateLater(database.topology, skipped));
  // Monthly audit partitions three months ahead; sealing committed audit rows in the background.
  await untilDone("creating the audit partitions", async () => void (await running.audit.ensurePartitions(3)));
  sdk.audit.startSealer({
    intervalMs: 10_000,
    onError: (error) => logger.error("audit sealing failed", { error: String(error) }),
  });
  // It LISTENs on every database holding sends: one that is down delays it, not the API.
  if (config.email.dispatcher) await untilDone("starting the email dispatcher", () => running.email.startDispatcher());
  if (stopping) return;

  const app = createApp(sdk, {
    trustedOrigins: config.trustedOrigins,
    bodyLimitBytes: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
  });
  http = await startServer(app.fetch, { port: config.port, hostname: config.host });
  if (config.email.transport === "log") {
    logger.warn(
      "EMAIL_TRANSPORT=log: no email is delivered (each message is logged without its subject, body or links), and email verification is not required to sign in",
    );
  }

  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  // One line for the log stream, the banner for people on stderr (never mixed into stdout).
  logger.info("started", { url: config.publicUrl, seconds: Number(seconds) });
  writeBanner({
    seconds,
    publicUrl: config.publicUrl,
    embeddedDataDir: embedded ? config.dataDir : undefined,
    mailViewer: sdk.email.devMessagesOpen,
    mailNotDelivered: config.email.transport === "log",
  });
}

let shuttingDown: Promise<never> | undefined;
/** Idempotent: a signal during a shutdown that a failed start-up began joins it. */
function shutdown(reason: string, startup: Promise<void>, code = 0): Promise<never> {
  stopping = true;
  return (shuttingDown ??= stopInOrder(reason, startup, code));
}

async function stopInOrder(reason: string, startup: Promise<void>, code: number): Promise<never> {
  logger.info("shutting down", { reason, timeoutMs });
  for (const timer of retries) clearTimeout(timer);
  // The steps below are bounded; this is for a bug in them.
  setTimeout(() => {
    logger.error("shutdown did not end; exiting");
    process.exit(1);
  }, timeoutMs + 2000).unref();
  const usesEmbedded = !config.topology && !config.databaseUrl;
  const clean = await shutdownInOrder(
    [
      // The step in progress ends first (start() then stops), so that everything it started is known.
      { name: "start-up", run: () => startup.catch(() => {}) },
      { name: "the HTTP server", run: (ms) => http?.close({ graceMs: Math.min(ms, timeoutMs / 2) }) },
      { name: "background work and pools", run: () => sdk?.close() },
      {
        name: "the embedded PostgreSQL",
        reserveMs: usesEmbedded ? Math.min(3000, Math.floor(timeoutMs * 0.3)) : 0,
        run: (ms) => embedded?.stop({ timeoutMs: ms }),
      },
    ],
    timeoutMs,
    logger,
  );
  logger.info("stopped");
  process.exit(clean ? code : 1);
}

let startup: Promise<void> = Promise.resolve();
onShutdownSignal((signal) => void shutdown(signal, startup), logger);
// A crash must not leave the embedded PostgreSQL running either (it is in a session of its own).
process.on("uncaughtException", (error) => {
  logger.error("uncaught exception", { error: error.message, stack: error.stack });
  void shutdown("uncaught exception", startup, 1);
});
startup = start();
startup.catch((error: unknown) => {
  if (stopping) return;
  const message = error instanceof Error ? error.message : String(error);
  // The sentence for the operator, as for a configuration mistake; the stack only in debug logs.
  process.stderr.write(`sv-sdk cannot start: ${message}\n`);
  logger.error("start-up failed", { error: message });
  if (error instanceof Error) logger.debug("start-up failure", { stack: error.stack });
  void shutdown("start-up failed", Promise.resolve(), 1);
});
