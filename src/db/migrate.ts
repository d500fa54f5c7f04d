/**
 * Applies the SQL migrations in `drizzle/` to every database of the topology, each under an advisory
 * lock so that instances starting together migrate once. Applying twice changes nothing.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { drizzle } from "drizzle-orm/postgres-js";
import { migrate } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import type { Topology } from "./topology.js";

export const MIGRATIONS_FOLDER = fileURLToPath(new URL("../../drizzle", import.meta.url));
/** Arbitrary but fixed: every sv-sdk process migrating one database takes the same lock. */
const MIGRATION_LOCK_KEY = 7_246_155_347;

export interface MigrationReport {
  database: string;
  appliedBefore: number;
  appliedNow: number;
  total: number;
}

/** Number of migrations shipped in `drizzle/meta/_journal.json`. */
export function shippedMigrationCount(): number {
  const journal = JSON.parse(readFileSync(`${MIGRATIONS_FOLDER}/meta/_journal.json`, "utf8")) as { entries: unknown[] };
  return journal.entries.length;
}

/** Number of migrations recorded as applied in a database (0 before the first run). */
export async function appliedMigrationCount(sql: postgres.Sql): Promise<number> {
  const [table] = await sql<{ exists: boolean }[]>`
    select to_regclass('drizzle.__drizzle_migrations') is not null as exists`;
  if (!table?.exists) return 0;
  const [row] = await sql<{ count: number }[]>`select count(*)::int as count from drizzle.__drizzle_migrations`;
  return row?.count ?? 0;
}

export async function migrateDatabase(database: string, url: string): Promise<MigrationReport> {
  // One connection, so the advisory lock and the migration share a session.
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
    try {
      const appliedBefore = await appliedMigrationCount(sql);
      await migrate(drizzle(sql), { migrationsFolder: MIGRATIONS_FOLDER });
      const appliedNow = await appliedMigrationCount(sql);
      return { database, appliedBefore, appliedNow, total: shippedMigrationCount() };
    } finally {
      await sql`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`;
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Migrates every database of the topology (dedicated tenant databases are named there too). */
export async function migrateTopology(topology: Topology): Promise<MigrationReport[]> {
  const reports: MigrationReport[] = [];
  for (const [name, config] of Object.entries(topology.databases)) {
    reports.push(await migrateDatabase(name, config.url));
  }
  return reports;
}

export function describeMigration(report: MigrationReport): string {
  const applied = report.appliedNow - report.appliedBefore;
  return applied === 0
    ? `${report.database}: up to date (${report.appliedNow}/${report.total} migrations)`
    : `${report.database}: applied ${applied} migration(s), now ${report.appliedNow}/${report.total}`;
}
