/**
 * Global setup of `npm run test:faults`: one migrated and seeded PostgreSQL data directory (the
 * "golden" cluster), stopped. Every scenario copies it and runs its own cluster on the copy, so it
 * may stop, freeze and restart PostgreSQL without touching anyone else's; a copy starts in about a
 * second, where initdb and the migrations would take several.
 *
 * The teardown is the safety net behind each scenario's own clean-up: whatever a scenario started
 * under the run's directory (PostgreSQL clusters, server processes) is killed by pid, frozen ones
 * included, and the directory is removed.
 */
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import type { TestProject } from "vitest/node";
import { startEmbeddedPostgres } from "../../src/db/embedded.js";
import { migrateDatabase } from "../../src/db/migrate.js";
import { createSdk } from "../../src/index.js";
import { FAULT_TABLES_SQL } from "./harness/fault-routes.js";
import { GOLDEN_DATABASE, killLeftovers } from "./harness/processes.js";

declare module "vitest" {
  export interface ProvidedContext {
    faults: { root: string; golden: string };
  }
}

export default async function setup(project: TestProject) {
  const root = await mkdtemp(join(tmpdir(), "sv-sdk-faults-"));
  // Run as root, PostgreSQL runs as a `postgres` system user, who must reach the clusters below.
  await chmod(root, 0o755);
  const golden = join(root, "golden");
  const started = Date.now();
  try {
    await createGolden(golden);
  } catch (error) {
    await killLeftovers(root);
    await rm(root, { recursive: true, force: true });
    throw error;
  }
  process.stderr.write(
    `[faults] golden cluster ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${golden})\n`,
  );
  project.provide("faults", { root, golden });
  return async () => {
    const killed = await killLeftovers(root);
    if (killed.length > 0) process.stderr.write(`[faults] teardown killed leftovers: ${killed.join(", ")}\n`);
    await rm(root, { recursive: true, force: true });
  };
}

/** Initialises a cluster in `dir`, migrates and seeds its database, adds the fault routes' table, and stops it. */
async function createGolden(dir: string): Promise<void> {
  const cluster = await startEmbeddedPostgres({ dataDir: dir, database: GOLDEN_DATABASE });
  try {
    await migrateDatabase("main", cluster.url);
    const seeder = createSdk({ databaseUrl: cluster.url });
    try {
      await seeder.seed();
    } finally {
      await seeder.close();
    }
    // The test-only table of the fault route (harness/fault-routes.ts), granted to the runtime role
    // as an SDK user's own migration grants theirs.
    const owner = postgres(cluster.url, { max: 1, onnotice: () => {} });
    try {
      await owner.unsafe(FAULT_TABLES_SQL);
    } finally {
      await owner.end({ timeout: 5 });
    }
  } finally {
    await cluster.stop();
  }
}
