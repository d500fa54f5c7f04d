/**
 * A tenant move's cutover up to the flip, while the tenant's writes are refused: the writes in flight
 * end, the target catches up (online), it gets the control-plane rows its tenant rows reference and
 * sequences above the copied ids, and both sides are compared. Any failure gives the tenant its writes
 * back on the source — offline, only a failed comparison does — and says so.
 */
import type postgres from "postgres";
import { giveWritesBack } from "./tenant-move-admin.js";
import { type MoveContext, type TenantMoveProgress, waitForWritesInFlight } from "./tenant-move-context.js";
import { verifyOffline } from "./tenant-move-offline.js";
import { currentLsn, setSubscriptionEnabled, waitForLsn } from "./tenant-move-online.js";
import { TenantMoveError, type TablePlan } from "./tenant-move-plan.js";
import { advanceSequences, copyMissingReferences, type TableReport, verifyRows } from "./tenant-move-rows.js";

export interface CutoverChecks {
  context: MoveContext;
  tenantId: string;
  from: string;
  to: string;
  mode: "online" | "offline";
  source: postgres.Sql;
  target: postgres.Sql;
  /** Every planned table; `copied`, those not derived (caches). */
  plans: TablePlan[];
  copied: TablePlan[];
  /** Offline: the platform rows' id maps (see platformRowMaps). */
  maps: Map<string, Record<string, string>>;
  cutoverTimeoutMs?: number;
  onProgress?: (progress: TenantMoveProgress) => void;
  /** Times a step (the move's step timings). */
  timed: <T>(step: string, work: () => Promise<T>) => Promise<T>;
}

/** Returns the tables as compared, equal on both sides. */
export async function checkCutover(move: CutoverChecks): Promise<TableReport[]> {
  const { context, tenantId, from, to, mode, source, target, plans, copied, timed } = move;
  let verifying = false;
  try {
    await timed("writes in flight", () => waitForWritesInFlight(context, from));
    if (mode === "online") {
      await timed("final catch-up", async () => {
        // Enabled again first: a crash may have left it stopped, and a stopped subscription never catches up.
        await setSubscriptionEnabled(target, tenantId, true);
        await waitForLsn(source, target, tenantId, await currentLsn(source), move.cutoverTimeoutMs ?? 30_000);
        await setSubscriptionEnabled(target, tenantId, false);
      });
    }
    const references = timed("references and sequences", async () => {
      if (to !== "main") await copyMissingReferences(context.main, source, target, copied, tenantId);
      await advanceSequences(target, copied);
      for (const plan of plans.filter((p) => p.derived))
        await target.unsafe(`delete from ${plan.sql} t where ${plan.filter}`, [tenantId]);
    });
    move.onProgress?.({ phase: "verify", table: "", done: 0, total: copied.length });
    if (mode === "online") {
      // Online, the copied tables are compared meanwhile: neither touches what the other reads.
      verifying = true;
      const verified = timed("verify", () => verifyRows(source, target, copied, tenantId, { from, to }));
      return (await Promise.all([references, verified]))[1];
    }
    await references;
    verifying = true;
    return await timed("verify", () => verifyOffline(source, target, copied, move.maps, tenantId, { from, to }));
  } catch (error) {
    if (mode === "offline" && !verifying) throw error;
    await giveWritesBack(context, from, target, mode);
    throw new TenantMoveError(
      `${(error as Error).message}; the tenant is writable on '${from}' again — ${mode === "online" ? "--resume retries the cutover, --abort stops the move" : "run the move again"}`,
    );
  }
}
