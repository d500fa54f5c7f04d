import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { describeMigration, migrateTopology, type AppMigrations } from "../../db/migrate.js";
import { cliConfig, parseOptions, UsageError, withTopology, type Command } from "../command.js";

export const migrateCommand: Command = {
  name: "migrate",
  help: `
Usage: sv-sdk migrate [--migrations <folder>] [--schemas <a,b>]

Applies the SQL migrations shipped in drizzle/ to every database of the topology (DATABASE_TOPOLOGY,
DATABASE_URL, or the embedded PostgreSQL in DATA_DIR), each under an advisory lock, and prints one
line per database. Running it again changes nothing ("up to date").

Options:
  --migrations <folder>  your own drizzle-kit migrations folder, applied after sv-sdk's on every
                         database, under the same lock (ledger: drizzle.__app_migrations)
  --schemas <a,b>        your schemas the runtime role (sv_app) reads and writes: granted after
                         migrating (platform.grant_to_runtime)

Exit codes: 0 migrated or up to date, 1 a migration failed, 2 bad options or configuration.`,
  async run(args) {
    const options = parseOptions(args, { migrations: { type: "string" }, schemas: { type: "string" } });
    const app = appMigrations(options.migrations, options.schemas);
    const config = cliConfig();
    await withTopology(config, false, async (topology) => {
      for (const report of await migrateTopology(topology, app ? [app] : []))
        process.stdout.write(`${describeMigration(report)}\n`);
    });
    return 0;
  },
};

function appMigrations(folder: string | undefined, schemas: string | undefined): AppMigrations | undefined {
  if (folder === undefined) {
    if (schemas !== undefined)
      throw new UsageError("--schemas goes with --migrations (the schemas your migrations create)");
    return undefined;
  }
  const path = resolve(folder);
  if (!existsSync(`${path}/meta/_journal.json`))
    throw new UsageError(`--migrations ${folder}: no meta/_journal.json there (run drizzle-kit generate)`);
  const names = (schemas ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return { folder: path, schemas: names };
}
