import { existsSync } from "node:fs";
import { resolve } from "node:path";
/**
 * `sv-sdk migrate` (also `db:migrate`): every database of the topology, one line each; a database
 * that does not answer is skipped and reported (exit 1), or waited for with `--wait`.
 */
import { describeMigration, isUnreachable, migrateTopology, type AppMigrations } from "../../db/migrate.js";
import { cliConfig, parseOptions, UsageError, withTopology, type Command } from "../command.js";

/** `--wait` without a number. */
const DEFAULT_WAIT_SECONDS = 60;
/** The longest `--wait` accepted (nothing waits forever). */
const MAX_WAIT_SECONDS = 3_600;

export const migrateCommand: Command = {
  name: "migrate",
  help: `
Usage: sv-sdk migrate [--migrations <folder>] [--schemas <a,b>] [--wait[=<seconds>]]
       (also: sv-sdk db:migrate)

Applies the SQL migrations shipped in drizzle/ to every database of the topology (DATABASE_TOPOLOGY,
DATABASE_URL, or the embedded PostgreSQL in DATA_DIR), each under an advisory lock, and prints one
line per database: migrations applied, up to date, or unreachable. Running it again changes nothing
("up to date"). A database that does not answer within 3 s is skipped — the others are migrated —
and the command exits 1 naming it; run it again once the database is back.

Options:
  --migrations <folder>  your own drizzle-kit migrations folder, applied after sv-sdk's on every
                         database, under the same lock (ledger: drizzle.__app_migrations)
  --schemas <a,b>        your schemas the runtime role (sv_app) reads and writes: granted after
                         migrating (platform.grant_to_runtime)
  --wait[=<seconds>]     wait for a database that does not answer, up to <seconds> (default
                         ${DEFAULT_WAIT_SECONDS}, at most ${MAX_WAIT_SECONDS}), checking every second

Exit codes: 0 every database migrated or up to date, 1 a migration failed or a database was
unreachable (the others were migrated), 2 bad options or configuration.`,
  async run(args) {
    const { wait, rest } = takeWait(args);
    const options = parseOptions(rest, { migrations: { type: "string" }, schemas: { type: "string" } });
    const app = appMigrations(options.migrations, options.schemas);
    const config = cliConfig();
    const reports = await withTopology(config, false, (topology) =>
      migrateTopology(topology, app ? [app] : [], {
        unreachable: "report",
        waitMs: wait * 1000,
        onUnreachable: (database, reason) =>
          process.stderr.write(
            wait > 0
              ? `sv-sdk migrate: database '${database}' is unreachable (${reason}); waiting up to ${wait} s for it\n`
              : `sv-sdk migrate: database '${database}' is unreachable (${reason}); skipping it\n`,
          ),
      }),
    );
    for (const report of reports) process.stdout.write(`${describeMigration(report)}\n`);
    const skipped = reports.filter(isUnreachable).map((r) => r.database);
    if (skipped.length === 0) return 0;
    process.stderr.write(
      `sv-sdk migrate: not migrated: ${skipped.join(", ")} (unreachable). The other databases are migrated; run it again when ${skipped.length === 1 ? "it is" : "they are"} back (or with --wait).\n`,
    );
    return 1;
  },
};

/** `--wait` takes an optional value (`--wait`, `--wait=30`), which parseArgs cannot express: taken out first. */
function takeWait(args: string[]): { wait: number; rest: string[] } {
  let wait = 0;
  const rest: string[] = [];
  for (const arg of args) {
    const match = /^--wait(?:=(.*))?$/.exec(arg);
    if (!match) {
      rest.push(arg);
      continue;
    }
    const value = match[1] ?? String(DEFAULT_WAIT_SECONDS);
    if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > MAX_WAIT_SECONDS)
      throw new UsageError(`--wait=${value}: a whole number of seconds from 1 to ${MAX_WAIT_SECONDS}`);
    wait = Number(value);
  }
  return { wait, rest };
}

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
