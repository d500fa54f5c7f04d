/**
 * Where the database is, for entry points: the configured topology, `DATABASE_URL`, or — with neither
 * — the embedded PostgreSQL kept in the data directory. The caller stops `embedded`, on signals too.
 */
import { join } from "node:path";
import type { Config } from "../config.js";
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from "./embedded.js";
import { singleDatabase, type Topology } from "./topology.js";

export interface ResolvedDatabase {
  topology: Topology;
  embedded?: EmbeddedPostgresHandle;
}

export async function resolveDatabase(config: Config, log: (message: string) => void): Promise<ResolvedDatabase> {
  if (config.topology) return { topology: config.topology };
  if (config.databaseUrl) return { topology: singleDatabase(config.databaseUrl, config.databaseAppUrl) };
  const embedded = await startEmbeddedPostgres({
    dataDir: join(config.dataDir, "postgres"),
    port: config.embeddedPostgresPort,
    // Out of reach of a terminal's Ctrl-C: the entry point stops it, after finishing its own work.
    detached: true,
    log,
  });
  return { topology: singleDatabase(embedded.url), embedded };
}
