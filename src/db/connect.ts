/**
 * Where the database is, for entry points: the configured topology, `DATABASE_URL`, or — with neither
 * — the embedded PostgreSQL kept in the data directory. The caller stops `embedded`, on signals too.
 *
 * The runtime logs in as a login of its own (`appUrl`), never as the owner: a pool that logs in as the
 * owner and only assumes sv_app can `SET ROLE` back to the owner from injected SQL. The embedded
 * cluster's login is `sv_app` with a password generated on first start and kept beside the superuser's
 * (mode 0600); migrating sets it up. Production refuses to start without one for every database;
 * elsewhere a missing one is a warning (src/db/router.ts) and the pool assumes sv_app as before.
 */
import { join } from "node:path";
import { developmentSecret } from "../dev-secret.js";
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from "./embedded.js";
import { RUNTIME_ROLE } from "./router.js";
import { singleDatabase, type Topology } from "./topology.js";

export interface ResolvedDatabase {
  topology: Topology;
  embedded?: EmbeddedPostgresHandle;
}

/** Where the databases are, as the entry points' configuration says (src/config.ts's Config has it). */
export interface DatabaseSettings {
  topology?: Topology;
  databaseUrl?: string;
  databaseAppUrl?: string;
  /** The embedded PostgreSQL's data lives in `<dataDir>/postgres` when no URL or topology is given. */
  dataDir: string;
  embeddedPostgresPort?: number;
  environment: string;
}

export async function resolveDatabase(
  config: DatabaseSettings,
  log: (message: string) => void,
): Promise<ResolvedDatabase> {
  if (config.topology) return { topology: requireRuntimeLogins(config, config.topology) };
  if (config.databaseUrl)
    return { topology: requireRuntimeLogins(config, singleDatabase(config.databaseUrl, config.databaseAppUrl)) };
  const dataDir = join(config.dataDir, "postgres");
  const embedded = await startEmbeddedPostgres({
    dataDir,
    port: config.embeddedPostgresPort,
    // Out of reach of a terminal's Ctrl-C: the entry point stops it, after finishing its own work.
    detached: true,
    log,
  });
  const appUrl = new URL(embedded.url);
  appUrl.username = RUNTIME_ROLE;
  appUrl.password = await developmentSecret(dataDir, "app-password");
  return { topology: singleDatabase(embedded.url, appUrl.toString()), embedded };
}

/** In production every database needs its runtime login; elsewhere the topology passes as it is. */
function requireRuntimeLogins(config: DatabaseSettings, topology: Topology): Topology {
  if (config.environment !== "production") return topology;
  const missing = Object.entries(topology.databases)
    .filter(([, database]) => !database.appUrl)
    .map(([name]) => name);
  if (missing.length === 0) return topology;
  if (config.topology) {
    throw new Error(
      `every database of DATABASE_TOPOLOGY needs an appUrl (the runtime's own login, sv_app) when NODE_ENV=production; missing for: ${missing.join(", ")}`,
    );
  }
  throw new Error(
    "DATABASE_APP_URL is required when NODE_ENV=production: the API must not log in as the owner of DATABASE_URL " +
      "(injected SQL could SET ROLE back to it). Give it a login for sv_app, e.g. postgres://sv_app:<password>@host/db — " +
      "the migration at start-up sets that password",
  );
}
