/**
 * `npm run audit:verify [-- --seal]`: checks every audit seal chain and sealed row of every database
 * of the configured topology (DATABASE_URL, DATABASE_TOPOLOGY or the embedded PostgreSQL) and prints
 * the result as JSON. `--seal` seals the committed rows first. Exit code 0 when the trail is intact,
 * 1 when a row was altered, is missing or was slipped in (the first one is named, with its database),
 * 2 when verification could not run.
 */
import { loadConfig } from "../config.js";
import { createCoreRouter } from "../core-modules.js";
import { createModuleContext } from "../db/module-context.js";
import { auditModule } from "../modules/audit/index.js";
import { cliLogger, withTopology } from "./command.js";

const sealFirst = process.argv.slice(2).includes("--seal");
const config = loadConfig(process.env);
await withTopology(config, false, async (topology) => {
  const router = createCoreRouter(topology);
  try {
    const audit = auditModule.create(createModuleContext(router, auditModule, cliLogger(config)), {});
    if (sealFirst) console.error(`sealed: ${JSON.stringify(await audit.seal())}`);
    const started = performance.now();
    const result = await audit.verify();
    const seconds = (performance.now() - started) / 1000;
    console.log(JSON.stringify({ ...result, seconds: Math.round(seconds * 1000) / 1000 }, null, 2));
    if (result.ok) {
      const databases = Object.keys(result.databases);
      console.error(
        `audit trail OK: ${result.rows} sealed rows in ${result.seals} seals, ${result.unsealedRows} not sealed yet ` +
          `(${databases.length === 1 ? "database" : "databases"} ${databases.join(", ")})`,
      );
    } else {
      console.error(
        `audit trail BROKEN in database '${result.database}': row ${result.firstBadRow.id} ${result.firstBadRow.reason} — ${result.detail}`,
      );
      process.exitCode = 1;
    }
  } catch (error) {
    console.error(`audit verification failed to run: ${(error as Error).message}`);
    process.exitCode = 2;
  } finally {
    await router.close();
  }
});
