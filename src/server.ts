/**
 * `npm start`: configuration from the environment, the embedded PostgreSQL when no DATABASE_URL is
 * given, migrations, seeds, then the API. Shuts down in order on SIGTERM/SIGINT.
 */
import { serve } from "@hono/node-server";
import { createApp } from "./app.js";
import { loadConfigOrExit } from "./config.js";
import { resolveDatabase } from "./db/connect.js";
import { describeMigration, migrateTopology } from "./db/migrate.js";
import { createSdk } from "./index.js";
import { createJsonLogger } from "./logger.js";
import { sdkOptionsFromConfig } from "./sdk-from-config.js";

const config = loadConfigOrExit(process.env);
const logger = createJsonLogger(config.logLevel);
const started = performance.now();

const { topology, embedded } = await resolveDatabase(config, (message) => logger.info(message));
for (const report of await migrateTopology(topology)) logger.info(describeMigration(report));

const sdk = createSdk(await sdkOptionsFromConfig(config, topology, logger));
await sdk.seed();
await sdk.auth.listen();
// Monthly audit partitions three months ahead; sealing committed audit rows in the background.
await sdk.audit.ensurePartitions(3);
sdk.audit.startSealer({ intervalMs: 10_000, onError: (error) => logger.error("audit sealing failed", { error: String(error) }) });
if (config.email.dispatcher) await sdk.email.startDispatcher();
const app = createApp(sdk, {
  trustedOrigins: config.trustedOrigins,
  bodyLimitBytes: config.bodyLimitBytes,
  trustProxy: config.trustProxy,
});

const server = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, () => {
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const base = config.publicUrl;
  process.stdout.write(
    [
      "",
      `  sv-sdk is up in ${seconds}s${embedded ? " (embedded PostgreSQL in " + config.dataDir + "/postgres)" : ""}`,
      `  API      ${base}/api/v1`,
      `  Auth     ${base}/api/auth`,
      `  Docs     ${base}/docs`,
      ...(sdk.email.devMessagesOpen ? [`  Mail     ${base}/dev/mail`] : []),
      `  OpenAPI  ${base}/openapi.json`,
      `  Ready    ${base}/ready`,
      "",
    ].join("\n") + "\n",
  );
});

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  logger.info("shutting down", { signal });
  // A second signal, or a stuck step, must not keep the process alive forever.
  const force = setTimeout(() => {
    logger.error("shutdown timed out; exiting");
    process.exit(1);
  }, 15_000);
  force.unref();
  // Stop accepting, let in-flight requests finish, then background work, pools, and the cluster.
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    if ("closeIdleConnections" in server) (server as { closeIdleConnections(): void }).closeIdleConnections();
  });
  await sdk.close();
  await embedded?.stop();
  logger.info("stopped");
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
