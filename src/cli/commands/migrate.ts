import { describeMigration, migrateTopology } from "../../db/migrate.js";
import { cliConfig, parseOptions, withTopology, type Command } from "../command.js";

export const migrateCommand: Command = {
  name: "migrate",
  help: `
Usage: sv-sdk migrate

Applies the SQL migrations shipped in drizzle/ to every database of the topology (DATABASE_TOPOLOGY,
DATABASE_URL, or the embedded PostgreSQL in DATA_DIR), each under an advisory lock, and prints one
line per database. Running it again changes nothing ("up to date").

Exit codes: 0 migrated or up to date, 1 a migration failed, 2 bad options or configuration.`,
  async run(args) {
    parseOptions(args, {});
    const config = cliConfig();
    await withTopology(config, false, async (topology) => {
      for (const report of await migrateTopology(topology)) process.stdout.write(`${describeMigration(report)}\n`);
    });
    return 0;
  },
};
