/**
 * Row work shared by the online and the offline tenant move (tenant-move.ts): the offline batch copy,
 * the control-plane rows a tenant database needs, clearing a target's non-authoritative rows, the
 * identity sequences, the verification, and the source rows kept after a switch until `--finalize`.
 *
 * Kept source rows leave the live tables at the switch, into platform.tenant_move_retained (one jsonb
 * per row, in the source database): platform-wide work visits every database (the email dispatcher
 * claims pending sends wherever they are, webhooks look a send up anywhere), so a copy left in the
 * live tables would be read and acted on twice. The retained copy is what `--finalize` deletes.
 */
import { sql, type SQL } from "drizzle-orm";
import type postgres from "postgres";
import type { Database } from "./unit-of-work.js";
import { ident, qualified, rowsHash, TenantMoveError, type TablePlan } from "./tenant-move-plan.js";

/** Copies control-plane rows (users, the organization) that moved rows reference, if missing. */
export async function copyControlPlaneRows(
  main: postgres.Sql,
  target: postgres.Sql,
  table: string,
  ids: string[],
): Promise<void> {
  if (ids.length === 0) return;
  const name = qualified(table);
  const [row] = await main.unsafe<{ rows: string | null }[]>(
    `select json_agg(r)::text as rows from ${name} r where r.id = any($1::uuid[])`,
    [ids] as never[],
  );
  if (!row?.rows) return;
  await target.unsafe(
    `insert into ${name} select * from jsonb_populate_recordset(null::${name}, $1::text::jsonb) on conflict do nothing`,
    [row.rows],
  );
}

/** The control-plane rows the tenant's rows in `rowsAt` reference and `target` lacks: copied from main. */
export async function copyMissingReferences(
  main: postgres.Sql,
  rowsAt: postgres.Sql,
  target: postgres.Sql,
  plans: TablePlan[],
  tenantId: string,
): Promise<void> {
  for (const plan of plans) {
    for (const key of plan.controlPlaneRefs) {
      const rows = await rowsAt.unsafe<{ id: string }[]>(
        `select distinct t.${ident(key.column)}::text as id from ${plan.sql} t
          where ${plan.filter} and t.${ident(key.column)} is not null`,
        [tenantId],
      );
      const ids = rows.map((r) => r.id);
      if (ids.length === 0) continue;
      const present = await target.unsafe<{ id: string }[]>(
        `select ${ident(key.refColumn)}::text as id from ${qualified(key.references)} where ${ident(key.refColumn)} = any($1::uuid[])`,
        [ids] as never[],
      );
      const have = new Set(present.map((r) => r.id));
      await copyControlPlaneRows(
        main,
        target,
        key.references,
        ids.filter((id) => !have.has(id)),
      );
    }
  }
}

/**
 * Removes the tenant's rows from `sql`'s live tables (children first) and any retained copy there: a
 * target's rows are never authoritative before the switch (an aborted or crashed attempt, a copy kept
 * by an earlier move away), so a move clears them before it copies. Returns the rows removed.
 */
/** How many rows of the tenant the planned tables hold in `sql`'s database. */
export async function countTenantRows(sql: postgres.Sql, plans: TablePlan[], tenantId: string): Promise<number> {
  let total = 0;
  for (const plan of plans) {
    const [row] = await sql.unsafe<{ n: number }[]>(
      `select count(*)::int as n from ${plan.sql} t where ${plan.filter}`,
      [tenantId],
    );
    total += row!.n;
  }
  return total;
}

export async function clearTenantRows(sql: postgres.Sql, plans: TablePlan[], tenantId: string): Promise<number> {
  let removed = 0;
  await sql.begin(async (tx) => {
    for (const plan of [...plans].reverse()) {
      removed += (await tx.unsafe(`delete from ${plan.sql} t where ${plan.filter}`, [tenantId])).count;
    }
    removed += (await tx`delete from platform.tenant_move_retained where tenant_id = ${tenantId}`).count;
  });
  return removed;
}

/** Copied ids came from the source's sequences: the target's must continue above them. */
export async function advanceSequences(target: postgres.Sql, plans: TablePlan[]): Promise<void> {
  for (const plan of plans) {
    for (const column of plan.identity) {
      await target.unsafe(
        `select setval(s, greatest(m, coalesce(pg_sequence_last_value(s), 1)))
           from (select pg_get_serial_sequence($1, $2)::regclass as s,
                        (select coalesce(max(${ident(column)}), 1) from ${plan.sql}) as m) q`,
        [plan.name, column],
      );
    }
  }
}

export interface TableReport {
  table: string;
  rows: number;
  /** Online: the XOR of a 64-bit hash of every row (rowsHash); offline: md5 over the sorted row md5s. */
  checksum: string;
}

/** Counts and hashes every copied table on both sides at once; throws on the first difference. */
export async function verifyRows(
  source: postgres.Sql,
  target: postgres.Sql,
  plans: TablePlan[],
  tenantId: string,
  names: { from: string; to: string },
): Promise<TableReport[]> {
  // Every table at once (as many at a time as the connections allow): the cutover waits for the slowest.
  const hashes = await Promise.all(
    plans.map((plan) => Promise.all([rowsHash(source, plan, tenantId), rowsHash(target, plan, tenantId)])),
  );
  return plans.map((plan, i) => {
    const [expected, actual] = hashes[i]!;
    if (expected.rows !== actual.rows || expected.checksum !== actual.checksum) {
      throw new TenantMoveError(
        `${plan.name} differs: ${expected.rows} rows (${expected.checksum}) on '${names.from}', ` +
          `${actual.rows} rows (${actual.checksum}) on '${names.to}'`,
      );
    }
    return { table: plan.name, rows: actual.rows, checksum: actual.checksum };
  });
}

/**
 * Before the cutover, while the tenant still writes: reads the copied rows on the target once and
 * refreshes the planner's statistics of the tables that received them. The first read of freshly
 * copied rows sets their hint bits, writing every page again; done here, it is not inside the
 * cutover's verify (1.95 s of verify at 1M rows became 1.1 s) — and the tenant's queries on the
 * target are planned for its rows.
 */
export async function settleCopiedRows(target: postgres.Sql, plans: TablePlan[], tenantId: string): Promise<void> {
  await Promise.all(
    plans.map(async (plan) => {
      await target.unsafe(`select count(*) from ${plan.sql} t where ${plan.filter}`, [tenantId]);
      await target.unsafe(`analyze ${plan.sql}`);
    }),
  );
}

/**
 * After the switch: the source's rows of the tenant leave its live tables for the retained copy (caches
 * are dropped, not kept), children first, one transaction per table. Not one for all: deleting a
 * permissions row takes the permission model lock (drizzle/0011) to the end of its transaction, and
 * holding it while a large table's rows move would refuse every tenant's permission changes on the
 * source (lock_timeout, 503) for that long. A crash between tables leaves the rest for `--resume`,
 * which runs this again. Replication must be stopped first, or these deletes would travel to the target.
 */
export async function retainSourceRows(source: postgres.Sql, plans: TablePlan[], tenantId: string): Promise<number> {
  let retained = 0;
  for (const plan of [...plans].reverse()) {
    if (plan.derived) {
      await source.unsafe(`delete from ${plan.sql} t where ${plan.filter}`, [tenantId]);
      continue;
    }
    const moved = await source.unsafe(
      `with gone as (delete from ${plan.sql} t where ${plan.filter} returning t.*)
       insert into platform.tenant_move_retained (tenant_id, table_name, row)
       select $1, $2, to_jsonb(gone) from gone`,
      [tenantId, plan.name],
    );
    retained += moved.count;
  }
  return retained;
}

/** Rows of the tenant in the source's retained copy (what `--finalize` would delete). */
export async function retainedRows(sql: postgres.Sql, tenantId: string): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from platform.tenant_move_retained where tenant_id = ${tenantId}`;
  return row!.n;
}

/**
 * A module's share of the retained copy (`TenantSwitch.retain`): in `tx`, a transaction on the source,
 * the rows of `table` (`schema.table`) matching `where` leave the live table for the tenant's retained
 * copy. Returns how many.
 */
export async function retainWhere(tx: Database, tenantId: string, table: string, where: SQL): Promise<number> {
  const name = sql.raw(qualified(table));
  const rows = await tx.execute<{ n: number }>(sql`
    with gone as (delete from ${name} t where ${where} returning t.*),
         kept as (insert into platform.tenant_move_retained (tenant_id, table_name, row)
                  select ${tenantId}::uuid, ${table}, to_jsonb(gone) from gone returning 1)
    select count(*)::int as n from kept`);
  return rows[0]!.n;
}
