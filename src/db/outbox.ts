/**
 * The cross-database outbox: how a unit of work changes another database without committing in
 * two. A unit commits in one database; what it must also change elsewhere — an audit event when
 * `audit` lives on a database of its own, a module's work in a tenant placed on another database,
 * the copies of a deleted user — is written as an *effect* into `platform.outbox` of the unit's
 * database (drizzle/0020), in the unit's transaction: it commits with the change it follows, or not
 * at all. The relay (outbox-relay.ts) applies it to its target after the commit, exactly once.
 *
 * Effects are data, never code: rows inserted into a table the modules declare, or rows (by key)
 * deleted from one.
 * When the target is the unit's own database there is nothing to defer: the same function applies
 * the effect at once, in the unit.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { sql, type SQL } from "drizzle-orm";
import type { Router } from "./router.js";
import { currentLevel, currentStore, type Database } from "./unit-of-work.js";

/** Rows are column → JSON value; every row of one effect names the same columns. */
export type Row = Readonly<Record<string, unknown>>;

export type Effect =
  /** Inserts `rows` into `table` (`schema.table`, a table a module declares). */
  | { op: "insert"; table: string; rows: Row[] }
  /** Deletes the rows of `table` whose key columns equal one of `rows` (cascades follow). */
  | { op: "delete"; table: string; rows: Row[] };

/**
 * The database the current unit of work writes its rows in: where it was pinned (a worker visiting
 * each database), else where its tenant lives, else main (the control plane and every tenant that
 * has no database of its own). Undefined outside a unit of work.
 */
export function unitDatabase(): string | undefined {
  const store = currentStore();
  if (!store?.level) return undefined;
  return store.pinned ?? store.level.tenantDatabase ?? "main";
}

/**
 * Applies `effect` to `target`: at once (`direct`) when the unit writes there or when no unit is
 * open, else through the outbox of the unit's database.
 */
export async function routeEffect(
  router: Router,
  target: string,
  effect: Effect,
  direct: () => Promise<void>,
): Promise<void> {
  const origin = unitDatabase();
  if (origin === undefined || origin === target) return direct();
  // A unit that will never commit applies the effect in its own transaction at the target (joined
  // at the unit's root, rolled back with it), so it reads back what a committed unit would deliver.
  if (neverCommits.getStore()) return router.onDatabase(target, () => router.transaction(direct));
  await enqueue(router.database(origin), target, effect);
}

const neverCommits = new AsyncLocalStorage<true>();

/**
 * Runs `fn`, whose unit of work is always rolled back (the rollback fixture), applying its
 * cross-database effects inside it instead of through the outbox: nothing it writes can commit in
 * any database, so there is no half-commit to avoid, and the test reads its own audit events where
 * `audit` lives on a database of its own. Never for a unit that may commit.
 */
export function inUnitThatNeverCommits<T>(fn: () => Promise<T>): Promise<T> {
  return neverCommits.run(true, fn);
}

/** Writes `effect` for `target` into the outbox behind `db` (the unit's transaction there, or its pool). */
export async function enqueue(db: Database, target: string, effect: Effect): Promise<void> {
  await db.execute(
    sql`insert into platform.outbox (target, effect) values (${target}, ${JSON.stringify(effect)}::jsonb)`,
  );
}

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

/** `"schema"."table"` of a table the modules declare (effects read back from a database are checked again). */
function qualified(router: Router, table: string): string {
  const [schema, name, ...rest] = table.split(".");
  if (!router.catalog.tables.has(table) || !schema || !name || rest.length > 0)
    throw new Error(`outbox: '${table}' is not a table any module declares`);
  return `"${schema}"."${name}"`;
}

function columnsOf(rows: readonly Row[]): string[] {
  const columns = Object.keys(rows[0] ?? {});
  if (columns.length === 0) throw new Error("outbox: an effect's rows name no column");
  for (const column of columns) if (!IDENTIFIER.test(column)) throw new Error(`outbox: bad column name '${column}'`);
  for (const row of rows) {
    const keys = Object.keys(row);
    if (keys.length !== columns.length || keys.some((k) => !columns.includes(k)))
      throw new Error("outbox: every row of an effect must name the same columns");
  }
  return columns;
}

/**
 * The statement that applies an insert or delete effect, its rows passed as one jsonb parameter and
 * typed by the table's own row type (so a uuid column compares as a uuid and keeps its index).
 */
export function effectStatement(router: Router, effect: Effect): SQL {
  const table = qualified(router, effect.table);
  const columns = columnsOf(effect.rows);
  const rows = sql`jsonb_populate_recordset(null::${sql.raw(table)}, ${JSON.stringify(effect.rows)}::jsonb)`;
  const list = columns.map((c) => `"${c}"`).join(", ");
  if (effect.op === "insert")
    return sql`insert into ${sql.raw(table)} (${sql.raw(list)}) select ${sql.raw(list)} from ${rows}`;
  const match = columns.map((c) => `t."${c}" = k."${c}"`).join(" and ");
  return sql`delete from ${sql.raw(table)} t using ${rows} k where ${sql.raw(match)}`;
}

/** Whether the current unit's row-level security scope admits rows of every tenant in `tenants`. */
export function scopeAdmits(tenants: readonly (string | null)[]): boolean {
  const level = currentLevel();
  const scope = level?.tenant ?? null;
  if (scope === "*") return true;
  return tenants.every((t) => (t ?? null) === (scope === "" ? null : scope));
}
