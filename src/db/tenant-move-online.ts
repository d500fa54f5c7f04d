/**
 * The replication half of an online tenant move (tenant-move.ts drives it): PostgreSQL's own logical
 * replication carries the tenant's rows from the source database to the target while the tenant keeps
 * writing. On the source, a publication names every moved table with a row filter
 * `WHERE (tenant_id = '<tenant>')` (PostgreSQL ≥ 15) and a logical slot of the pgoutput plugin; on the
 * target, a subscription (copy_data = true) copies the filtered rows, then applies every later change.
 *
 * Why each step is as it is:
 * - Row filters name only the row's own columns, and for UPDATE/DELETE those columns must be in the
 *   replica identity: every moved table gets `REPLICA IDENTITY FULL` (on both sides, since a move back
 *   publishes from the target). Tables that had no tenant_id column got one in drizzle/0018, filled by
 *   a trigger from the parent row; a module table without one is refused here (use --offline).
 * - The slot is created by the mover with pg_create_logical_replication_slot (and the subscription with
 *   create_slot = false): CREATE SUBSCRIPTION creating its own slot on the same cluster waits for its
 *   own transaction and hangs. The publication exists before the slot: pgoutput reads it as of the
 *   WAL it decodes, and a slot older than its publication fails with "publication does not exist".
 * - Only insert, update and delete are published: a TRUNCATE of a shared table on the source must not
 *   empty the target's table for every tenant.
 * - The apply worker runs with session_replication_role = replica: the target's triggers (the
 *   permission cache refresh) and foreign-key checks do not fire for replicated rows. Caches are cleared
 *   and control-plane rows the rows reference are copied by the mover, at the cutover.
 * - The subscription connects with the source's owner URL (the topology's `url`); creating one needs a
 *   superuser (or pg_create_subscription on PostgreSQL ≥ 16).
 */
import type postgres from "postgres";
import type { TenantMoveProgress } from "./tenant-move-context.js";
import { canCopyAsReplica, createSlotAndCopy } from "./tenant-move-copy.js";
import { countTenantRows } from "./tenant-move-rows.js";
import { ident, TenantMoveError, type TablePlan } from "./tenant-move-plan.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Publication, slot and subscription share one name per tenant: `sv_move_<tenant hex>`. */
export function replicationName(tenantId: string): string {
  return `sv_move_${tenantId.replace(/-/g, "").toLowerCase()}`;
}

/** Refuses the online move with a sentence saying how to enable it, when the source cannot publish. */
export async function checkLogicalReplication(source: postgres.Sql, from: string): Promise<void> {
  const [row] = await source<{ wal_level: string; version: number }[]>`
    select current_setting('wal_level') as wal_level, current_setting('server_version_num')::int as version`;
  if (row!.version < 150000) {
    throw new TenantMoveError(
      `an online move needs PostgreSQL 15 or later on '${from}' (publication row filters); it runs ${row!.version}: use --offline (the tenant's writes are refused for the whole copy)`,
      "usage",
    );
  }
  if (row!.wal_level !== "logical") {
    throw new TenantMoveError(
      `an online move needs wal_level = logical on '${from}' (it is '${row!.wal_level}'): run ALTER SYSTEM SET wal_level = logical there and restart PostgreSQL, or move with --offline (the tenant's writes are refused for the whole copy)`,
      "usage",
    );
  }
}

/** Refuses an online move that replication cannot carry, saying why and offering --offline. */
export async function checkOnline(
  source: postgres.Sql,
  from: string,
  to: string,
  plans: TablePlan[],
  maps: Map<string, Record<string, string>>,
) {
  await checkLogicalReplication(source, from);
  const bad = unfilterable(plans);
  if (bad.length > 0) {
    throw new TenantMoveError(
      `${bad.join(", ")} ${bad.length === 1 ? "has" : "have"} no tenant_id column, so a publication cannot filter the tenant's rows: add one (drizzle/0018 shows how) or move with --offline`,
      "usage",
    );
  }
  for (const [table, map] of maps) {
    if (Object.entries(map).some(([a, b]) => a !== b)) {
      throw new TenantMoveError(
        `platform rows of ${table} have other ids on '${to}' than on '${from}' (migrate both with drizzle/0018 and seed them), or move with --offline`,
        "usage",
      );
    }
  }
}

/** Tables whose rows cannot be filtered by tenant_id: an online move cannot carry them. */
export function unfilterable(plans: TablePlan[]): string[] {
  return plans.filter((plan) => !plan.columns.includes("tenant_id")).map((plan) => plan.name);
}

/** REPLICA IDENTITY FULL where it is not yet (once per table and database; a short lock, bounded by lock_timeout). */
export async function ensureReplicaIdentity(sql: postgres.Sql, plans: TablePlan[]): Promise<void> {
  for (const plan of plans) {
    const [row] = await sql<{ identity: string }[]>`
      select relreplident as identity from pg_class where oid = ${plan.name}::regclass`;
    if (row!.identity === "f") continue;
    await sql.begin(async (tx) => {
      await tx`set local lock_timeout = '5s'`;
      await tx.unsafe(`alter table ${plan.sql} replica identity full`);
    });
  }
}

/** Creates what is missing of the publication and slot (source) and the subscription (target). */
export async function startReplication(
  options: {
    source: postgres.Sql;
    target: postgres.Sql;
    sourceUrl: string;
    targetUrl: string;
    tenantId: string;
    plans: TablePlan[];
    /** Bound of the initial copy. */
    copyTimeoutMs: number;
    onTable?: (table: string, rows: number) => void;
  },
  timed: <T>(step: string, work: () => Promise<T>) => Promise<T> = (_, work) => work(),
): Promise<void> {
  const { source, target, tenantId, plans } = options;
  const name = replicationName(tenantId);
  // The tenant id went through a uuid check before it got here: it is safe as a literal.
  if (!/^[0-9a-f-]{36}$/i.test(tenantId)) throw new TenantMoveError(`not a tenant id: ${tenantId}`, "usage");
  const [publication] = await source`select 1 from pg_publication where pubname = ${name}`;
  if (!publication) {
    const tables = plans.map((plan) => `${plan.sql} where (tenant_id = '${tenantId}')`).join(", ");
    await timed("publication", () =>
      source.unsafe(`create publication ${ident(name)} for table ${tables} with (publish = 'insert, update, delete')`),
    );
  }
  const [slot] = await source`select 1 from pg_replication_slots where slot_name = ${name}`;
  // The mover copies the rows itself when it may write them as the apply worker does (tenant-move-copy.ts);
  // else the subscription's table-sync workers copy them.
  let copyData = true;
  if (!slot && (await canCopyAsReplica(target))) {
    const { sourceUrl, targetUrl, copyTimeoutMs, onTable } = options;
    await createSlotAndCopy({
      sourceUrl,
      targetUrl,
      slot: name,
      tenantId,
      plans,
      timeoutMs: copyTimeoutMs,
      onTable,
      timed,
    });
    copyData = false;
  } else if (!slot) {
    // A new logical slot waits for every transaction running on the source's cluster to end: bounded.
    await timed("slot", () =>
      source.begin(async (tx) => {
        await tx`set local statement_timeout = '60s'`;
        await tx`select pg_create_logical_replication_slot(${name}, 'pgoutput')`;
      }),
    ).catch((error: { code?: string }) => {
      if (error.code !== "57014") throw error;
      throw new TenantMoveError(
        `creating the replication slot waited 60 s for transactions open on the source to end: end them (pg_stat_activity) and --resume`,
      );
    });
  }
  const [subscription] = await target`select 1 from pg_subscription where subname = ${name}`;
  if (!subscription) {
    const conninfo = options.sourceUrl.replace(/'/g, "''");
    await timed("subscription", () =>
      target.unsafe(
        `create subscription ${ident(name)} connection '${conninfo}' publication ${ident(name)}
         with (create_slot = false, slot_name = '${name}', copy_data = ${copyData}, binary = true, enabled = true)`,
      ),
    );
  }
}

export interface SyncState {
  /** Tables still in their initial copy. */
  pending: number;
  tables: number;
  /** Errors the apply or table-sync workers reported (pg_stat_subscription_stats). */
  errors: number;
}

export async function syncState(target: postgres.Sql, tenantId: string): Promise<SyncState | undefined> {
  const [row] = await target<SyncState[]>`
    select (select count(*) from pg_subscription_rel r where r.srsubid = s.oid and r.srsubstate <> 'r')::int as pending,
           (select count(*) from pg_subscription_rel r where r.srsubid = s.oid)::int as tables,
           coalesce((select st.apply_error_count + st.sync_error_count from pg_stat_subscription_stats st
                      where st.subid = s.oid), 0)::int as errors
      from pg_subscription s where s.subname = ${replicationName(tenantId)}`;
  return row;
}

/**
 * Waits until the subscription has confirmed everything the source wrote up to `lsn` (its slot's
 * confirmed_flush_lsn: the subscriber applied and flushed it). Fails after `timeoutMs`.
 */
export async function waitForLsn(
  source: postgres.Sql,
  target: postgres.Sql,
  tenantId: string,
  lsn: string,
  timeoutMs: number,
) {
  const name = replicationName(tenantId);
  const deadline = Date.now() + timeoutMs;
  for (let polls = 0; ; polls++) {
    // The apply worker commits asynchronously and confirms what the target has flushed, which the WAL
    // writer does every 200 ms. A synchronous commit on the target flushes the applied changes with it.
    if (polls > 0) await target`select pg_current_xact_id()`;
    const [row] = await source<{ done: boolean | null }[]>`
      select confirmed_flush_lsn >= ${lsn}::pg_lsn as done from pg_replication_slots where slot_name = ${name}`;
    if (!row) throw new TenantMoveError(`the replication slot ${name} is gone from the source`);
    if (row.done) return;
    if (Date.now() > deadline)
      throw new TenantMoveError(`the target did not catch up with the source (to ${lsn}) within ${timeoutMs} ms`);
    await sleep(20);
  }
}

export async function currentLsn(source: postgres.Sql): Promise<string> {
  const [row] = await source<{ lsn: string }[]>`select pg_current_wal_lsn()::text as lsn`;
  return row!.lsn;
}

/** Stops applying changes (kept for a retry of the cutover); `enable` turns it back on. */
export async function setSubscriptionEnabled(target: postgres.Sql, tenantId: string, enabled: boolean) {
  const name = replicationName(tenantId);
  const [row] = await target`select 1 from pg_subscription where subname = ${name}`;
  if (row) await target.unsafe(`alter subscription ${ident(name)} ${enabled ? "enable" : "disable"}`);
}

/**
 * Drops the subscription (target), then the slot and the publication (source), whichever exist. The
 * subscription is detached from its slot first, so dropping it needs no connection to the source; the
 * slot — and the table-sync slots of an initial copy cut short — are dropped on the source directly,
 * once their walsenders have gone.
 */
export async function stopReplication(
  source: postgres.Sql,
  target: postgres.Sql,
  tenantId: string,
  timeoutMs = 30_000,
) {
  const name = replicationName(tenantId);
  const [subscription] = await target<
    { oid: number }[]
  >`select oid::int as oid from pg_subscription where subname = ${name}`;
  if (subscription) {
    await target.unsafe(`alter subscription ${ident(name)} disable`);
    await target.unsafe(`alter subscription ${ident(name)} set (slot_name = none)`);
    await target.unsafe(`drop subscription ${ident(name)}`);
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const slots = await source<{ slot: string; active: boolean }[]>`
      select slot_name::text as slot, active from pg_replication_slots
       where slot_name = ${name} or (${subscription?.oid ?? -1}::int > 0 and slot_name like ${`pg_${subscription?.oid ?? 0}_sync_%`})`;
    for (const s of slots.filter((s) => !s.active)) {
      await source`select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = ${s.slot} and not active`;
    }
    if (slots.every((s) => !s.active)) break;
    if (Date.now() > deadline)
      throw new TenantMoveError(`the replication slot ${name} stayed in use on the source for ${timeoutMs} ms`);
    await sleep(50);
  }
  await source.unsafe(`drop publication if exists ${ident(name)}`);
}

/**
 * Waits for the subscription's initial copy of every table (where the subscription copies: see
 * startReplication), reporting rows as tables finish; fails on a worker error or after `timeoutMs`.
 */
export async function waitForSync(options: {
  source: postgres.Sql;
  target: postgres.Sql;
  plans: TablePlan[];
  tenantId: string;
  timeoutMs: number;
  onProgress?: (progress: TenantMoveProgress) => void;
}) {
  const { source, target, plans, tenantId } = options;
  // Counted only when a table is still copying: the mover's own copy has finished before this.
  let total: number | undefined;
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const state = await syncState(target, tenantId);
    if (!state)
      throw new TenantMoveError(`the subscription of this move is gone from the target: --abort, then move again`);
    if (state.errors > 0) {
      throw new TenantMoveError(
        `the subscription reported ${state.errors} errors (the target's PostgreSQL log says which): --abort, or fix the cause and --resume`,
      );
    }
    if (state.pending === 0 && state.tables > 0) return;
    total ??= await countTenantRows(source, plans, tenantId);
    const done = state.tables === 0 ? 0 : Math.round((total * (state.tables - state.pending)) / state.tables);
    options.onProgress?.({ phase: "copy", table: "", done, total });
    if (Date.now() > deadline)
      throw new TenantMoveError(`the initial copy did not finish in time: --resume waits again`);
    await sleep(200);
  }
}
