/**
 * The other verbs of `sv-sdk tenant:move`: `--abort` (before the switch: the source is authoritative
 * and writable again, replication objects and the target's partial rows are gone), `--finalize` (after
 * the switch: the source's retained rows are deleted) and `--dry-run` (the plan and its sizes, no change);
 * and what a cutover that failed before its switch does (`giveWritesBack`).
 */
import type { ModuleCatalog } from "./module.js";
import { checkMigrated, type MoveContext, openMove, setResident, UNFINISHED } from "./tenant-move-context.js";
import { checkOnline, setSubscriptionEnabled, stopReplication } from "./tenant-move-online.js";
import { planTables, platformRowMaps, TenantMoveError } from "./tenant-move-plan.js";
import { clearTenantRows, retainedRows } from "./tenant-move-rows.js";
import type { Topology } from "./topology.js";
import { PLACEMENTS_CHANNEL } from "./placements-memory.js";

export interface TenantMoveCommandOptions {
  topology: Topology;
  catalog: ModuleCatalog;
  tenantId: string;
}

export interface AbortResult {
  from: string;
  to: string;
  /** The phase the move was in. */
  phase: string;
  /** The target's partial rows removed. */
  rowsRemoved: number;
}

/**
 * Stops an unfinished move before its switch: the subscription, slot and publication are dropped, the
 * target's partial rows removed, and the placement points at the source, writable.
 *
 * @example
 * await abortTenantMove({ topology, catalog, tenantId });
 */
export async function abortTenantMove(options: TenantMoveCommandOptions): Promise<AbortResult> {
  const context = await openMove(options.topology, options.catalog, options.tenantId);
  try {
    const { record, tenantId } = context;
    if (!record || !UNFINISHED.includes(record.phase))
      throw new TenantMoveError(`tenant ${tenantId} has no move under way to abort`, "usage");
    if (record.phase === "switched") {
      throw new TenantMoveError(
        `the move has switched tenant ${tenantId} to '${record.target}' (its new writes are there): move it back with --to ${record.source}`,
        "usage",
      );
    }
    const source = context.db(record.source);
    const target = context.db(record.target);
    await stopReplication(source, target, tenantId);
    const plans = await planTables(target, options.catalog);
    const rowsRemoved = await clearTenantRows(target, plans, tenantId);
    await setResident(context, record.target, null);
    await setResident(context, record.source, "active");
    await context.main.begin(async (tx) => {
      await tx`update platform.tenant_placements set database = ${record.source}, state = 'active', updated_at = now()
                where tenant_id = ${tenantId}`;
      await tx`update platform.tenant_moves set phase = 'aborted', updated_at = now() where tenant_id = ${tenantId}`;
      await tx`select pg_notify(${PLACEMENTS_CHANNEL}, ${tenantId})`;
    });
    return { from: record.source, to: record.target, phase: record.phase, rowsRemoved };
  } finally {
    await context.close();
  }
}

export interface FinalizeResult {
  source: string;
  target: string;
  rowsDeleted: number;
}

/**
 * Deletes the source rows a finished move kept (platform.tenant_move_retained on the source). After it,
 * the way back is a move back.
 *
 * @example
 * const { rowsDeleted } = await finalizeTenantMove({ topology, catalog, tenantId });
 */
export async function finalizeTenantMove(options: TenantMoveCommandOptions): Promise<FinalizeResult> {
  const context = await openMove(options.topology, options.catalog, options.tenantId);
  try {
    const { record, placement, tenantId } = context;
    if (record?.phase !== "done") {
      throw new TenantMoveError(
        record && UNFINISHED.includes(record.phase)
          ? `the move of tenant ${tenantId} is still in phase ${record.phase}: --resume it first`
          : `tenant ${tenantId} has no finished move whose source rows are kept`,
        "usage",
      );
    }
    if (placement?.database !== record.target)
      throw new TenantMoveError(`tenant ${tenantId} does not live on '${record.target}': nothing to finalize`);
    const source = context.db(record.source);
    let rowsDeleted = 0;
    await source.begin(async (tx) => {
      rowsDeleted = (await tx`delete from platform.tenant_move_retained where tenant_id = ${tenantId}`).count;
    });
    await context.main`update platform.tenant_moves set phase = 'finalized', finalized_at = now(), updated_at = now()
                        where tenant_id = ${tenantId}`;
    return { source: record.source, target: record.target, rowsDeleted };
  } finally {
    await context.close();
  }
}

export interface MovePlan {
  from: string;
  to: string;
  mode: "online" | "offline";
  /** Why an online move would be refused (then --offline is the way). */
  onlineRefused?: string;
  tables: { table: string; rows: number; bytes: number; derived: boolean }[];
  /** The target's rows of the tenant a move would remove first (a kept copy, an aborted attempt). */
  staleRowsOnTarget: number;
  /** A move under way, if any. */
  unfinished?: { phase: string; target: string };
}

/**
 * What `tenant:move` would do, with the tenant's row counts and sizes per table, changing nothing.
 *
 * @example
 * const plan = await planTenantMove({ topology, catalog, tenantId, to: "tenant_db" });
 */
export async function planTenantMove(
  options: TenantMoveCommandOptions & { to: string; offline?: boolean },
): Promise<MovePlan> {
  const context = await openMove(options.topology, options.catalog, options.tenantId);
  try {
    const { record, placement, tenantId } = context;
    const from = record && UNFINISHED.includes(record.phase) ? record.source : (placement?.database ?? "main");
    await checkMigrated(context, [from, options.to]);
    const source = context.db(from);
    const target = context.db(options.to);
    const plans = await planTables(target, options.catalog);
    const tables: MovePlan["tables"] = [];
    for (const plan of plans) {
      const [row] = await source.unsafe<{ rows: number; bytes: string }[]>(
        `select count(*)::int as rows, coalesce(sum(pg_column_size(t.*)), 0)::bigint::text as bytes
           from ${plan.sql} t where ${plan.filter}`,
        [tenantId],
      );
      tables.push({ table: plan.name, rows: row!.rows, bytes: Number(row!.bytes), derived: plan.derived });
    }
    let staleRowsOnTarget = from === options.to ? 0 : await retainedRows(target, tenantId);
    if (from !== options.to) {
      for (const plan of plans) {
        const [row] = await target.unsafe<{ n: number }[]>(
          `select count(*)::int as n from ${plan.sql} t where ${plan.filter}`,
          [tenantId],
        );
        staleRowsOnTarget += row!.n;
      }
    }
    let onlineRefused: string | undefined;
    if (!options.offline) {
      try {
        const copied = plans.filter((p) => !p.derived);
        await checkOnline(source, from, options.to, copied, await platformRowMaps(copied, source, target, tenantId));
      } catch (error) {
        onlineRefused = (error as Error).message;
      }
    }
    return {
      from,
      to: options.to,
      mode: options.offline || onlineRefused ? "offline" : "online",
      ...(onlineRefused && { onlineRefused }),
      tables,
      staleRowsOnTarget,
      ...(record &&
        UNFINISHED.includes(record.phase) && { unfinished: { phase: record.phase, target: record.target } }),
    };
  } finally {
    await context.close();
  }
}

/** A failed verification: the tenant is writable on its source again; online replication resumes, offline starts over. */
export async function giveWritesBack(
  context: MoveContext,
  from: string,
  target: import("postgres").Sql,
  mode: "online" | "offline",
) {
  if (mode === "online") await setSubscriptionEnabled(target, context.tenantId, true);
  await setResident(context, from, "active");
  await context.main.begin(async (tx) => {
    await tx`update platform.tenant_placements set state = 'active', updated_at = now() where tenant_id = ${context.tenantId}`;
    await tx`update platform.tenant_moves set phase = ${mode === "online" ? "syncing" : "aborted"}, updated_at = now()
              where tenant_id = ${context.tenantId}`;
  });
}
