/**
 * Applies migrations to every database of the topology from the environment (DATABASE_URL,
 * DATABASE_TOPOLOGY, or the embedded PostgreSQL) and reports each. Exit code 1 on failure.
 */
import { loadConfig } from "../config.js";
import { resolveDatabase } from "../db/connect.js";
import { describeMigration, migrateTopology } from "../db/migrate.js";

const config = loadConfig(process.env);
const { topology, embedded } = await resolveDatabase(config, (m) => console.error(m));
try {
  for (const report of await migrateTopology(topology)) console.log(describeMigration(report));
} catch (error) {
  console.error(`migration failed: ${(error as Error).message}`);
  process.exitCode = 1;
} finally {
  await embedded?.stop();
}
