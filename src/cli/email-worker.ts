/**
 * `npm run email:worker`: the email dispatcher alone, for running delivery apart from the API (any
 * number of workers may run: claims never overlap). It shares the API's database, so it needs
 * DATABASE_URL or DATABASE_TOPOLOGY; the embedded PostgreSQL belongs to `npm start`. On SIGTERM/SIGINT
 * it stops claiming, aborts requests in flight and returns its claimed rows to the queue.
 */
import { loadConfig } from "../config.js";
import { resolveDatabase } from "../db/connect.js";
import { createSdk } from "../index.js";
import { createJsonLogger } from "../logger.js";
import { sdkOptionsFromConfig } from "../sdk-from-config.js";

const config = loadConfig(process.env);
const logger = createJsonLogger(config.logLevel);
if (!config.topology && !config.databaseUrl) {
  logger.error("the email worker needs DATABASE_URL (or DATABASE_TOPOLOGY): it works on the API's database, and the embedded PostgreSQL belongs to `npm start`");
  process.exit(1);
}
const { topology } = await resolveDatabase(config, (message) => logger.info(message));
const sdk = createSdk(await sdkOptionsFromConfig(config, topology, logger));
await sdk.email.startDispatcher();
logger.info("email worker running", { transport: sdk.email.transport });

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  logger.info("email worker shutting down", { signal });
  const force = setTimeout(() => {
    logger.error("email worker shutdown timed out; exiting");
    process.exit(1);
  }, 15_000);
  force.unref();
  await sdk.close();
  logger.info("email worker stopped");
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
