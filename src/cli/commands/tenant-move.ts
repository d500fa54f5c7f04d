/**
 * `sv-sdk tenant:move`: moves a tenant online (src/db/tenant-move.ts), or offline, and the verbs around a
 * move — --dry-run, --resume, --abort, --finalize. Each move, abort and finalization is audited.
 */
import { coreCatalog } from "../../core-modules.js";
import {
  type MovePhase,
  moveTenant,
  TenantMoveError,
  type MoveTenantResult,
  type TenantMoveProgress,
} from "../../db/tenant-move.js";
import { UNFINISHED } from "../../db/tenant-move-context.js";
import { abortTenantMove, finalizeTenantMove, planTenantMove } from "../../db/tenant-move-admin.js";
import type { Topology } from "../../db/topology.js";
import {
  cliConfig,
  CommandFailure,
  parseOptions,
  UsageError,
  withSdk,
  withTopology,
  type Command,
} from "../command.js";
import { createProgress } from "../progress.js";
import { UUID } from "../../uuid.js";

export const tenantMoveCommand: Command = {
  name: "tenant:move",
  help: `
Usage: sv-sdk tenant:move --tenant <uuid> --to <database> [--offline] [--resume] [--dry-run] [--batch <n>]
       sv-sdk tenant:move --tenant <uuid> --abort
       sv-sdk tenant:move --tenant <uuid> --finalize

Moves one tenant (organization) to another database of DATABASE_TOPOLOGY (both migrated and seeded).
Online (the default, PostgreSQL >= 15 with wal_level = logical on the source): a publication with a row
filter on the tenant and a subscription on the target copy its rows while it stays writable; then, for
the cutover only, its writes are refused (503 TENANT_MOVING, Retry-After), the target catches up, row
counts and hashes are compared on both sides, and its placement flips to the target in one transaction.
The source's rows are kept (out of its live tables) until --finalize. The audit trail is not copied:
events stay sealed in the database that wrote them. One line per step goes to stderr.

  --tenant <uuid>    the tenant (organization id)
  --to <database>    a database name of the topology, e.g. tenant_acme (moving back works the same way)
  --offline          copy in batches with the tenant's writes refused for the whole copy
  --batch <n>        offline: rows per batch (default 500)
  --resume           continue an interrupted move from the step it reached
  --dry-run          print the plan (tables, rows, sizes, online or offline) and change nothing
  --abort            stop a move before its switch: the source is authoritative and writable again
  --finalize         delete the source rows a finished move kept
  --kill-after <step>  crash drill: the process kills itself (SIGKILL, nothing cleaned up) once <step>
                     (preparing, syncing, copying, cutover, switched) is recorded — to rehearse
                     --resume and --abort before you need them

Every instance's DATABASE_TOPOLOGY must name the target database; running instances follow the
placement without a restart.

Exit codes: 0 done (or already there), 1 failed, 2 bad options or configuration.`,
  async run(args) {
    const options = parseOptions(args, {
      tenant: { type: "string" },
      to: { type: "string" },
      batch: { type: "string" },
      resume: { type: "boolean" },
      offline: { type: "boolean" },
      "dry-run": { type: "boolean" },
      abort: { type: "boolean" },
      finalize: { type: "boolean" },
      "kill-after": { type: "string" },
    });
    const killAfter = options["kill-after"] as MovePhase | undefined;
    if (killAfter !== undefined && !UNFINISHED.includes(killAfter))
      throw new UsageError(`--kill-after must be one of ${UNFINISHED.join(", ")}, got '${killAfter}'`);
    if (!options.tenant) throw new UsageError("--tenant is required");
    if (!UUID.test(options.tenant))
      throw new UsageError(`--tenant must be a tenant id (uuid), got '${options.tenant}'`);
    const verbs = [options.abort && "--abort", options.finalize && "--finalize", options["dry-run"] && "--dry-run"];
    if (verbs.filter(Boolean).length > 1) throw new UsageError(`choose one of ${verbs.filter(Boolean).join(", ")}`);
    if (!options.abort && !options.finalize && !options.to) throw new UsageError("--to is required");
    const batchSize = options.batch === undefined ? undefined : Number(options.batch);
    if (batchSize !== undefined && (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000)) {
      throw new UsageError(`--batch must be a whole number from 1 to 10000, got '${options.batch}'`);
    }
    const tenantId = options.tenant.toLowerCase();
    const config = cliConfig();
    const say = (line: string) => process.stderr.write(`${line}\n`);

    await withTopology(config, true, async (topology) => {
      if (options.to && !topology.databases[options.to]) {
        throw new UsageError(
          `the topology has no database named '${options.to}' (it has: ${Object.keys(topology.databases).join(", ")})`,
        );
      }
      const common = { topology, catalog: coreCatalog(), tenantId };
      const audit = (action: string, metadata: Record<string, unknown>) =>
        recordEvent(topology, action, tenantId, metadata);
      await reportErrors(async () => {
        if (options["dry-run"]) {
          const plan = await planTenantMove({ ...common, to: options.to!, offline: options.offline });
          process.stdout.write(`plan: tenant ${tenantId} from '${plan.from}' to '${plan.to}', ${plan.mode}\n`);
          if (plan.onlineRefused) process.stdout.write(`online refused: ${plan.onlineRefused}\n`);
          if (plan.unfinished)
            process.stdout.write(`unfinished move to '${plan.unfinished.target}' in phase ${plan.unfinished.phase}\n`);
          for (const t of plan.tables) {
            const note = t.derived ? "  (cache: rebuilt, not copied)" : "";
            process.stdout.write(
              `${t.table.padEnd(32)} ${String(t.rows).padStart(9)} rows ${kib(t.bytes).padStart(10)}${note}\n`,
            );
          }
          process.stdout.write(`stale rows on '${plan.to}' to clear first: ${plan.staleRowsOnTarget}\n`);
          return;
        }
        if (options.abort) {
          const aborted = await abortTenantMove(common);
          process.stdout.write(
            `aborted the move of tenant ${tenantId} to '${aborted.to}' (phase ${aborted.phase}): it is writable on '${aborted.from}', ${aborted.rowsRemoved} partial rows removed from '${aborted.to}'\n`,
          );
          await audit("tenant.move_aborted", aborted as unknown as Record<string, unknown>);
          return;
        }
        if (options.finalize) {
          const finalized = await finalizeTenantMove(common);
          process.stdout.write(
            `finalized the move of tenant ${tenantId} to '${finalized.target}': ${finalized.rowsDeleted} kept rows deleted from '${finalized.source}'\n`,
          );
          await audit("tenant.move_finalized", finalized as unknown as Record<string, unknown>);
          return;
        }
        const result = await runMove(topology, tenantId, options.to!, { ...options, batchSize, killAfter }, say);
        if (result.alreadyThere) {
          process.stdout.write(`tenant ${tenantId} already lives on '${result.to}': nothing to move\n`);
          return;
        }
        for (const t of result.tables) {
          process.stdout.write(`${t.table.padEnd(32)} ${String(t.rows).padStart(8)} rows  ${t.checksum}\n`);
        }
        process.stdout.write(
          `moved tenant ${tenantId} from '${result.from}' to '${result.to}' (${result.mode}${result.resumed ? ", resumed" : ""}): ` +
            `${result.rowsCopied} rows, writes refused for ${result.cutoverMs ?? "?"} ms; ` +
            `${result.rowsRetained} source rows kept until --finalize\n`,
        );
        await audit("tenant.moved", {
          ...{ from: result.from, to: result.to, mode: result.mode, resumed: result.resumed },
          ...{ cutoverMs: result.cutoverMs, rowsRetained: result.rowsRetained },
          tables: result.tables.map((t) => ({ table: t.table, rows: t.rows, checksum: t.checksum })),
        });
      });
    });
    return 0;
  },
};

const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

async function runMove(
  topology: Topology,
  tenantId: string,
  to: string,
  options: { offline?: boolean; resume?: boolean; batchSize?: number; killAfter?: MovePhase },
  say: (line: string) => void,
): Promise<MoveTenantResult> {
  const bars = { copy: createProgress("copying"), verify: createProgress("verifying") };
  let phase: TenantMoveProgress["phase"] | undefined;
  try {
    return await moveTenant({
      topology,
      catalog: coreCatalog(),
      tenantId,
      to,
      offline: options.offline,
      resume: options.resume,
      batchSize: options.batchSize,
      afterStep: (step) => {
        if (step !== options.killAfter) return;
        // Like a crash: no finally block, no connection closed, no replication stopped.
        say(`crash drill: killed after '${step}' (continue with --resume, or --abort)`);
        process.kill(process.pid, "SIGKILL");
      },
      onStep: (line) => {
        if (phase) bars[phase].finish();
        phase = undefined;
        say(line);
      },
      onProgress: (p) => {
        if (phase && phase !== p.phase) bars[phase].finish();
        phase = p.phase;
        bars[p.phase].update(p.done, p.total, p.table);
      },
    });
  } finally {
    if (phase) bars[phase].finish();
  }
}

async function reportErrors(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (error) {
    if (error instanceof TenantMoveError)
      throw error.kind === "usage" ? new UsageError(error.message) : new CommandFailure(error.message);
    throw error;
  }
}

async function recordEvent(topology: Topology, action: string, tenantId: string, metadata: Record<string, unknown>) {
  await withSdk(cliConfig(), topology, (sdk) =>
    sdk.withContext({ actor: { type: "system", id: "cli" } }, () =>
      sdk.transaction(() =>
        sdk.audit.recordAuditEvent({ action, tenantId: null, target: { type: "tenant", id: tenantId }, metadata }),
      ),
    ),
  );
}
