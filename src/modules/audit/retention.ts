/**
 * Retention policy: audit events are kept for `retentionDays` (default 400 days: a full year plus a
 * month of slack, so a yearly review always sees last year's events). Storage is one partition per
 * UTC month, and retention drops whole partitions whose entire month is older than the cutoff: a
 * partition straddling the cutoff, and the default partition, are kept whole — no row is ever
 * deleted one by one, so the append-only guarantee holds for everything still stored.
 *
 * It runs only as a member of `sv_maintenance` (or the tables' owner), never as the runtime role, and
 * records its own `audit.retention_applied` event in the same transaction as the drop. Sealed rows
 * that leave with a dropped partition are excused by verify because of that event's `droppedBefore`.
 *
 * Every database of the topology holds a trail of its own (see seal.ts), so partitions are kept
 * ahead and dropped in each (`context.everywhere`), and each records its own
 * `audit.retention_applied` event: verify reads `droppedBefore` in the database it checks.
 */
import { sql } from "drizzle-orm";
import type { ModuleContext } from "../../db/module.js";
import { AuditErrors } from "./errors.js";
import { placeName, requireComplete } from "./internal.js";
import { recordAuditEventHere } from "./record.js";

export const DEFAULT_RETENTION_DAYS = 400;

export interface RetentionOptions {
  /** Keep this many days of events (default 400). */
  retentionDays?: number;
  /** The current time (tests). */
  now?: Date;
}

export interface RetentionResult {
  cutoff: string;
  retentionDays: number;
  dropped: { database: string; partition: string; from: string; to: string }[];
}

/**
 * Creates the monthly partitions of the current month and `monthsAhead` more (default 3) in every
 * database of the topology, through the `audit.ensure_partitions` function, so the runtime role
 * needs no DDL right. Returns the partitions created.
 *
 * @example
 * await sdk.audit.ensurePartitions(3); // at start-up, and monthly
 */
export async function ensurePartitions(
  context: ModuleContext,
  monthsAhead = 3,
): Promise<{ database: string; partition: string }[]> {
  const { results, places, missing } = await context.everywhere(() =>
    context.db().execute<{ name: string }>(sql`select audit.ensure_partitions(${monthsAhead}::int) as name`),
  );
  requireComplete(missing);
  return results.flatMap((rows, i) => rows.map((row) => ({ database: placeName(places[i]!), partition: row.name })));
}

/**
 * Drops the partitions whose whole month is older than `retentionDays` and records an
 * `audit.retention_applied` event, in one transaction per database of the topology (each database
 * keeps its own trail and its own record of what left it). Needs an SDK connected as a member of
 * `sv_maintenance` or as the owner (`npm run audit:retention` does that).
 *
 * @example
 * const { dropped } = await sdk.audit.applyRetention({ retentionDays: 400 });
 */
export async function applyRetention(context: ModuleContext, options: RetentionOptions = {}): Promise<RetentionResult> {
  const retentionDays = options.retentionDays ?? DEFAULT_RETENTION_DAYS;
  if (!Number.isInteger(retentionDays) || retentionDays < 1) {
    throw AuditErrors.INVALID_AUDIT_EVENT({ retentionDays }, "retentionDays must be a positive whole number of days");
  }
  const cutoff = new Date((options.now ?? new Date()).getTime() - retentionDays * 86_400_000);
  const { results, places, missing } = await context.everywhere(() => dropBefore(context, cutoff, retentionDays));
  requireComplete(missing);
  const dropped = results.flatMap((partitions, i) =>
    partitions.map((p) => ({ database: placeName(places[i]!), ...p })),
  );
  return { cutoff: cutoff.toISOString(), retentionDays, dropped };
}

/** Retention in the database the module's handle points at, in the unit `everywhere` opened there. */
async function dropBefore(context: ModuleContext, cutoff: Date, retentionDays: number) {
  const db = context.db();
  const [role] = await db.execute<{ role: string; allowed: boolean }>(sql`
    select current_user as role,
           pg_has_role(current_user, 'sv_maintenance', 'MEMBER')
           or pg_has_role(current_user, (select relowner from pg_class where oid = 'audit.audit_logs'::regclass), 'MEMBER')
           as allowed`);
  if (!role?.allowed) throw AuditErrors.RETENTION_ROLE_REQUIRED({ role: role?.role });
  const dropped = await db.execute<{ partition_name: string; range_start: string; range_end: string }>(sql`
    select partition_name, range_start::text, range_end::text from audit.drop_partitions_before(${cutoff.toISOString()}::timestamptz)`);
  const partitions = dropped.map((d) => ({
    partition: d.partition_name,
    from: new Date(d.range_start).toISOString(),
    to: new Date(d.range_end).toISOString(),
  }));
  const droppedBefore = partitions.reduce<string | null>((max, p) => (max === null || p.to > max ? p.to : max), null);
  await recordAuditEventHere(context, {
    action: "audit.retention_applied",
    tenantId: null,
    actor: { type: "system", id: role.role },
    target: { type: "audit_log", id: "retention" },
    metadata: { retentionDays, cutoff: cutoff.toISOString(), droppedBefore, partitions },
  });
  return partitions;
}
