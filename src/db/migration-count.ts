/**
 * How many migrations a database has and how many sv-sdk ships: whether a database may serve (the
 * CLI, /ready) or receive a tenant (placement, moves, exports).
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { sql as drizzleSql } from "drizzle-orm";
import type postgres from "postgres";
import type { Database } from "./unit-of-work.js";

export const MIGRATIONS_FOLDER = fileURLToPath(new URL("../../drizzle", import.meta.url));
const LEDGER = "__drizzle_migrations";

/** Entries of a drizzle migrations folder's journal. */
export function journalLength(folder: string): number {
  let text: string;
  try {
    text = readFileSync(`${folder}/meta/_journal.json`, "utf8");
  } catch {
    throw new Error(
      `no drizzle migrations in ${folder}: expected ${folder}/meta/_journal.json (run drizzle-kit generate)`,
    );
  }
  return (JSON.parse(text) as { entries: unknown[] }).entries.length;
}

/** Number of migrations shipped in `drizzle/meta/_journal.json`. */
export function shippedMigrationCount(): number {
  return journalLength(MIGRATIONS_FOLDER);
}

/** Counts the rows of `drizzle.<ledger>` (0 before the first run) with `query`, whatever client runs it. */
async function countApplied(query: <T>(text: string) => Promise<T[]>, ledger: string): Promise<number> {
  const table = `drizzle."${ledger.replaceAll('"', '""')}"`;
  const [found] = await query<{ exists: boolean }>(
    `select to_regclass('${table.replaceAll("'", "''")}') is not null as exists`,
  );
  if (!found?.exists) return 0;
  const [row] = await query<{ count: number }>(`select count(*)::int as count from ${table}`);
  return row?.count ?? 0;
}

/** Number of migrations recorded as applied in a database (0 before the first run). */
export function appliedMigrationCount(sql: postgres.Sql, ledger = LEDGER): Promise<number> {
  return countApplied((text) => sql.unsafe(text) as never, ledger);
}

/**
 * `appliedMigrationCount` of sv-sdk's own ledger through a router handle: the unit of work's
 * transaction on that database when it holds one (never a second connection of the same pool).
 */
export function appliedMigrationCountOn(db: Database): Promise<number> {
  return countApplied((text) => db.execute(drizzleSql.raw(text)) as never, LEDGER);
}
