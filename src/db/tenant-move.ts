/**
 * Moving one tenant to another database of the topology (`sv-sdk tenant:move`), online by default:
 *
 *   preparing  the target's non-authoritative rows of the tenant are cleared (an aborted attempt, a copy
 *              kept by an earlier move away), the control-plane rows its rows reference are copied
 *              there, and a publication / slot / subscription start replicating the tenant's rows
 *              (tenant-move-online.ts). The tenant stays writable.
 *   syncing    the initial copy runs, then the target catches up with the source's WAL.
 *   cutover    the placement goes to 'moving': new units of work cannot write the tenant (503
 *              TENANT_MOVING), the write gate waits for those in flight; the target applies everything
 *              up to the source's current WAL position, the subscription stops, counts and row hashes
 *              are compared on both sides, and the placement flips to the target in one transaction.
 *              Only this step refuses writes; its length is recorded (cutover_ms) and returned.
 *   switched   replication objects are dropped, each module's `onTenantSwitched` hook moves the rows it
 *              moves itself (the audit trail, re-sealed on the target), and the source's rows leave
 *              its live tables for the retained copy (tenant-move-rows.ts), kept until `--finalize`.
 *   done       moved; `finalizeTenantMove` deletes the retained copy (tenant-move-admin.ts).
 *
 * `--offline` (a source without wal_level = logical, a table without tenant_id) goes preparing →
 * copying (the placement 'moving' for the whole batch copy) → cutover → switched → done. Every phase is
 * recorded in platform.tenant_moves before its work starts: `--resume` continues from it, `--abort`
 * (before the switch) undoes it. A failed verification gives the tenant its writes back at once.
 *
 * Which rows: every `tenant` table of the catalog with a `tenant_id` column holds the tenant's rows
 * `where tenant_id = $tenant` (discovered, not listed: tenant-move-plan.ts). Platform rows (built-in
 * roles) have the same id in every database (drizzle/0018), so replicated references need no
 * translation; the offline copy still translates ids for a module whose platform rows differ.
 */
import { drizzle } from "drizzle-orm/postgres-js";
import type { ModuleCatalog } from "./module.js";
import type { Database } from "./unit-of-work.js";
import { PLACEMENTS_CHANNEL } from "./placements-memory.js";
import { databaseOf, type Topology } from "./topology.js";
import {
  checkMigrated,
  type MovePhase,
  type TenantMoveProgress,
  openMove,
  setPhase,
  UNFINISHED,
  setResident,
  waitForWritesInFlight,
} from "./tenant-move-context.js";
import {
  checkOnline,
  currentLsn,
  ensureReplicaIdentity,
  startReplication,
  stopReplication,
  waitForLsn,
  waitForSync,
} from "./tenant-move-online.js";
import { checkCutover } from "./tenant-move-cutover.js";
import { checksum, planTables, platformRowMaps, TenantMoveError } from "./tenant-move-plan.js";
import { copyOffline } from "./tenant-move-offline.js";
import {
  clearTenantRows,
  copyControlPlaneRows,
  copyMissingReferences,
  retainSourceRows,
  retainWhere,
  settleCopiedRows,
  type TableReport,
} from "./tenant-move-rows.js";

export { TenantMoveError, type TableReport, type MovePhase, type TenantMoveProgress };

const DEFAULT_BATCH = 500;

export interface MoveTenantOptions {
  topology: Topology;
  /** The modules whose tables hold tenant rows (what moves is what they declare). */
  catalog: ModuleCatalog;
  tenantId: string;
  /** Name of the target database in the topology (migrated). */
  to: string;
  /** The blocking batch copy: the tenant's writes are refused for the whole copy. */
  offline?: boolean;
  /** Offline: rows per batch (default 500). */
  batchSize?: number;
  /** Continue an unfinished move of this tenant (without it an unfinished move is refused). */
  resume?: boolean;
  /** How long the initial copy may take (default 1 h), and the catch-up at the cutover (default 30 s). */
  syncTimeoutMs?: number;
  cutoverTimeoutMs?: number;
  onProgress?: (progress: TenantMoveProgress) => void;
  /** One line per step, for the operator. */
  onStep?: (line: string) => void;
  /** Called once each phase is recorded, before its work; an error thrown here stops the move (tests crash it). */
  afterStep?: (phase: MovePhase) => void | Promise<void>;
  /** Offline: called after each batch commits on the target. */
  afterBatch?: (table: string) => void | Promise<void>;
}

export interface MoveTenantResult {
  tenantId: string;
  from: string;
  to: string;
  mode: "online" | "offline";
  /** Nothing to do: the tenant already lives on `to`. */
  alreadyThere: boolean;
  resumed: boolean;
  /** Offline: rows inserted on the target by this run. Online: rows on the target at the switch. */
  rowsCopied: number;
  /** Source rows moved out of the live tables into the retained copy (deleted by `--finalize`), modules' hooks' included. */
  rowsRetained: number;
  /** Rows of the tenant the target held before the move (non-authoritative), removed first. */
  staleRowsCleared: number;
  /** How long the tenant's writes were refused (from this run's start of the cutover to the flip). */
  cutoverMs?: number;
  tables: TableReport[];
  /** Milliseconds this run spent in each step (`slot`, `initial copy`, `verify`, ...), in order. */
  timings: Record<string, number>;
}

/**
 * Moves a tenant's rows to the database `to` of the topology and points its placement there.
 *
 * @example
 * const result = await moveTenant({ topology, catalog, tenantId, to: "tenant_db_1", onStep: console.error });
 * console.log(`writes refused for ${result.cutoverMs} ms`);
 */
export async function moveTenant(options: MoveTenantOptions): Promise<MoveTenantResult> {
  const { topology, tenantId, to, catalog } = options;
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  if (!topology.databases[to]) {
    throw new TenantMoveError(
      `the topology has no database named '${to}' (it has: ${Object.keys(topology.databases).join(", ")})`,
      "usage",
    );
  }
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new TenantMoveError("the batch size must be a positive whole number", "usage");
  const step = (line: string) => options.onStep?.(line);

  const began = performance.now();
  const context = await openMove(topology, catalog, tenantId);
  try {
    const { record, placement, main } = context;
    const unfinished = record && UNFINISHED.includes(record.phase) ? record : undefined;
    let from: string;
    let mode: "online" | "offline";
    let phase: MovePhase;
    if (unfinished) {
      if (!options.resume) {
        throw new TenantMoveError(
          `an unfinished move of this tenant to '${unfinished.target}' exists (phase ${unfinished.phase}): run it again with --resume, or --abort it`,
          "usage",
        );
      }
      if (unfinished.target !== to) {
        throw new TenantMoveError(
          `the unfinished move of this tenant goes to '${unfinished.target}': resume it with --to ${unfinished.target}`,
          "usage",
        );
      }
      ({ source: from, mode, phase } = unfinished);
    } else {
      from = placement?.database ?? "main";
      if (!placement) {
        const elsewhere = catalog.tenantSchemas.filter((schema) => databaseOf(topology, schema) !== "main");
        if (elsewhere.length > 0) {
          throw new TenantMoveError(
            `the topology places ${elsewhere.join(", ")} outside main; moving a tenant without a placement out of a split topology is not supported yet`,
          );
        }
      }
      if (from === to) {
        return {
          ...{ tenantId, from, to, mode: options.offline ? "offline" : "online", alreadyThere: true, resumed: false },
          ...{ rowsCopied: 0, rowsRetained: 0, staleRowsCleared: 0, tables: [], timings: {} },
        };
      }
      if (record?.phase === "done" && record.source !== to) {
        throw new TenantMoveError(
          `the tenant's previous move keeps its rows on '${record.source}' until finalized: run tenant:move --tenant ${tenantId} --finalize first (or move it back to '${record.source}')`,
          "usage",
        );
      }
      mode = options.offline ? "offline" : "online";
      phase = "preparing";
    }
    if (!topology.databases[from])
      throw new TenantMoveError(`the tenant lives on '${from}', which the topology does not define`);
    await checkMigrated(context, [from, to]);
    const source = context.db(from);
    const target = context.db(to);
    const plans = await planTables(target, catalog);
    // Caches are not copied: the target computes them afresh (a move back then compares nothing stale).
    const copied = plans.filter((plan) => !plan.derived);
    const maps = await platformRowMaps(copied, source, target, tenantId);
    if (mode === "online") await checkOnline(source, from, to, copied, maps);

    if (!unfinished) {
      await main.begin(async (tx) => {
        await tx`insert into platform.tenant_placements (tenant_id, database, state) values (${tenantId}, ${from}, 'active')
                 on conflict (tenant_id) do nothing`;
        await tx`select pg_notify(${PLACEMENTS_CHANNEL}, ${tenantId})`;
        await tx`insert into platform.tenant_moves (tenant_id, source, target, phase, mode) values (${tenantId}, ${from}, ${to}, 'preparing', ${mode})
                 on conflict (tenant_id) do update set source = excluded.source, target = excluded.target, phase = 'preparing',
                   mode = excluded.mode, cursor = '{}', rows_copied = 0, cutover_ms = null, finalized_at = null,
                   started_at = now(), updated_at = now()`;
      });
      await options.afterStep?.("preparing");
    }
    step(
      `${unfinished ? "resuming" : "moving"} tenant ${tenantId} from '${from}' to '${to}' (${mode}, phase ${phase})`,
    );

    const result: MoveTenantResult = {
      ...{ tenantId, from, to, mode, alreadyThere: false, resumed: !!unfinished },
      ...{ rowsCopied: 0, rowsRetained: 0, staleRowsCleared: 0, tables: [], timings: {} },
    };
    result.timings.plan = Math.round(performance.now() - began);
    /** Runs one step of the move and adds its duration to the result's timings (shown in the step lines). */
    const timed = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
      const started = performance.now();
      try {
        return await work();
      } finally {
        result.timings[name] = (result.timings[name] ?? 0) + Math.round(performance.now() - started);
      }
    };
    const took = (...names: string[]) =>
      names.map((name) => `${name} ${((result.timings[name] ?? 0) / 1000).toFixed(2)} s`).join(", ");
    let cutoverStarted = 0;
    const next = async (phase: MovePhase, extra?: { cutoverMs?: number }) => {
      await setPhase(context, phase, extra);
      await options.afterStep?.(phase);
      return phase;
    };
    // The tenant's writes are refused from this commit on: its placement and the move's phase change together.
    const toMoving = async (phase: MovePhase) => {
      // Where the rows are first: a router that remembers the tenant there enters it there.
      await setResident(context, from, "moving");
      await main.begin(async (tx) => {
        await tx`update platform.tenant_placements set state = 'moving', updated_at = now() where tenant_id = ${tenantId}`;
        await tx`update platform.tenant_moves set phase = ${phase}, updated_at = now() where tenant_id = ${tenantId}`;
      });
      cutoverStarted = Date.now();
      await options.afterStep?.(phase);
      return phase;
    };
    while (phase !== "done") {
      if (phase === "preparing") {
        // A crashed attempt may have left replication running: stopped before its rows are cleared.
        result.staleRowsCleared = await timed("clear target", async () => {
          if (mode === "online") await stopReplication(source, target, tenantId);
          await setResident(context, to, null);
          return clearTenantRows(target, plans, tenantId);
        });
        step(
          `preparing: removed ${result.staleRowsCleared} non-authoritative rows of the tenant on '${to}' (${took("clear target")})`,
        );
        if (to !== "main") {
          await timed("references", async () => {
            // The tenant's organization first: every tenant row's foreign key points at it.
            await copyControlPlaneRows(main, target, catalog.tenantsTable!, [tenantId]);
            await copyMissingReferences(main, source, target, copied, tenantId);
          });
        }
        if (mode === "online") {
          await timed("replica identity", async () => {
            await ensureReplicaIdentity(source, copied);
            await ensureReplicaIdentity(target, copied);
          });
          let rowsSoFar = 0;
          await startReplication(
            {
              ...{ source, target, sourceUrl: topology.databases[from]!.url, targetUrl: topology.databases[to]!.url },
              ...{ tenantId, plans: copied, copyTimeoutMs: options.syncTimeoutMs ?? 3_600_000 },
              onTable: (table, rows) => {
                rowsSoFar += rows;
                options.onProgress?.({ phase: "copy", table, done: rowsSoFar, total: rowsSoFar });
              },
            },
            timed,
          );
          step(
            `preparing: publication, slot${result.timings["initial copy"] === undefined ? "" : `, the initial copy (${rowsSoFar} rows)`} and subscription created; the tenant stays writable (${took("references", "replica identity", "publication", "slot", ...(result.timings["initial copy"] === undefined ? [] : ["initial copy"]), "subscription")})`,
          );
          phase = await next("syncing");
        } else {
          phase = await toMoving("copying");
          await waitForWritesInFlight(context, from);
          step(`preparing: the tenant's writes are refused until the copy is verified (offline)`);
        }
      } else if (phase === "syncing") {
        await timed("table sync", () =>
          waitForSync({
            source,
            target,
            plans: copied,
            tenantId,
            timeoutMs: options.syncTimeoutMs ?? 3_600_000,
            onProgress: options.onProgress,
          }),
        );
        // The subscription catches up meanwhile.
        await Promise.all([
          timed("settle copied rows", () => settleCopiedRows(target, copied, tenantId)),
          timed("catch-up", async () =>
            waitForLsn(source, target, tenantId, await currentLsn(source), options.syncTimeoutMs ?? 3_600_000),
          ),
        ]);
        step(
          `syncing: initial copy done and caught up (${took("table sync", "settle copied rows", "catch-up")}); cutover (the tenant's writes are refused from now)`,
        );
        phase = await toMoving("cutover");
      } else if (phase === "copying") {
        result.rowsCopied = await copyOffline(context, { source, target, plans: copied, maps, to, batchSize }, options);
        phase = await next("cutover");
      } else if (phase === "cutover") {
        cutoverStarted ||= Date.now();
        result.tables = await checkCutover({
          ...{ context, tenantId, from, to, mode, source, target, plans, copied, maps, timed },
          ...{ cutoverTimeoutMs: options.cutoverTimeoutMs, onProgress: options.onProgress },
        });
        options.onProgress?.({ phase: "verify", table: "", done: copied.length, total: copied.length });
        if (mode === "online") result.rowsCopied = result.tables.reduce((n, t) => n + t.rows, 0);
        const cutoverMs = Date.now() - cutoverStarted;
        // The target holds the tenant before main says so; the source stops holding it right after.
        await setResident(context, to, "active");
        await main.begin(async (tx) => {
          await tx`update platform.tenant_placements set database = ${to}, state = 'active', updated_at = now() where tenant_id = ${tenantId}`;
          await tx`update platform.tenant_moves set phase = 'switched', cutover_ms = ${cutoverMs}, updated_at = now() where tenant_id = ${tenantId}`;
          // Running instances drop their cached placements at this commit.
          await tx`select pg_notify(${PLACEMENTS_CHANNEL}, ${tenantId})`;
        });
        result.cutoverMs = cutoverMs;
        await setResident(context, from, null);
        step(
          `cutover: verified ${result.tables.length} tables; the tenant lives on '${to}' (writes refused for ${cutoverMs} ms: ${took("writes in flight", ...(mode === "online" ? ["final catch-up"] : []), "references and sequences", "verify")})`,
        );
        await options.afterStep?.("switched");
        phase = "switched";
      } else if (phase === "switched") {
        await setResident(context, from, null); // again: a move resumed after a crash at the switch
        if (mode === "online") await timed("stop replication", () => stopReplication(source, target, tenantId));
        // Tables the move does not replicate whose module moves them itself (the audit trail).
        const hooksStarted = performance.now();
        for (const module of catalog.modules) {
          if (!module.onTenantSwitched) continue;
          const [sourceDb, targetDb] = [drizzle(source) as unknown as Database, drizzle(target) as unknown as Database];
          await module.onTenantSwitched({
            ...{ tenantId, from, to, source: sourceDb, target: targetDb, report: step },
            retain: async (tx, table, where) => {
              const n = await retainWhere(tx, tenantId, `${module.schema}.${table}`, where);
              result.rowsRetained += n;
              return n;
            },
          });
        }
        result.timings["module hooks"] = Math.round(performance.now() - hooksStarted);
        result.rowsRetained += await timed("retain source rows", () => retainSourceRows(source, plans, tenantId));
        step(
          `switched: replication stopped; ${result.rowsRetained} source rows kept on '${from}' until --finalize (${took("stop replication", "module hooks", "retain source rows")})`,
        );
        phase = await next("done");
      } else {
        throw new TenantMoveError(`the move is in phase '${phase}', which --resume cannot continue`);
      }
    }
    if (result.tables.length === 0) {
      for (const plan of copied)
        result.tables.push({ table: plan.name, ...(await checksum(target, plan, "to_jsonb(t)", [tenantId])) });
    }
    return result;
  } finally {
    await context.close();
  }
}
