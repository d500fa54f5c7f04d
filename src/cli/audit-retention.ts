/**
 * `npm run audit:retention [-- --days 400]`: drops the monthly audit partitions entirely older than
 * the retention policy (default 400 days, or AUDIT_RETENTION_DAYS) in every database of the topology
 * and records an `audit.retention_applied` event in each. Connects with DATABASE_URL as given — a login that is a member of
 * `sv_maintenance`, or the owner — never as the runtime role; anything else is refused.
 */
import { loadConfig } from "../config.js";
import { createCoreRouter } from "../core-modules.js";
import { createModuleContext } from "../db/module-context.js";
import { auditModule, DEFAULT_RETENTION_DAYS } from "../modules/audit/index.js";
import { cliLogger, withTopology } from "./command.js";

const args = process.argv.slice(2);
const daysArg = args.includes("--days") ? args[args.indexOf("--days") + 1] : process.env.AUDIT_RETENTION_DAYS;
const retentionDays = daysArg === undefined ? DEFAULT_RETENTION_DAYS : Number(daysArg);
if (!Number.isInteger(retentionDays) || retentionDays < 1) {
  console.error(`--days (or AUDIT_RETENTION_DAYS) must be a positive whole number of days, got '${daysArg}'`);
  process.exit(2);
}

const config = loadConfig(process.env);
await withTopology(config, false, async (topology) => {
  // asOwner: connect with the URL's own login (maintenance or owner), without assuming sv_app.
  const router = createCoreRouter(topology, { asOwner: true });
  try {
    const audit = auditModule.create(createModuleContext(router, auditModule, cliLogger(config)), {});
    const result = await audit.applyRetention({ retentionDays });
    console.log(JSON.stringify(result, null, 2));
    console.error(
      result.dropped.length === 0
        ? `nothing older than ${result.cutoff} to drop (policy: ${retentionDays} days)`
        : `dropped ${result.dropped.map((d) => `${d.database}: ${d.partition}`).join(", ")} (policy: ${retentionDays} days, cutoff ${result.cutoff})`,
    );
  } catch (error) {
    console.error(`audit retention failed: ${(error as Error).message}`);
    process.exitCode = 1;
  } finally {
    await router.close();
  }
});
