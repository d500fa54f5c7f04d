import { coreCatalog } from "../../core-modules.js";
import { moveTenant, TenantMoveError, type MoveTenantResult, type TenantMoveProgress } from "../../db/tenant-move.js";
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

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const tenantMoveCommand: Command = {
  name: "tenant:move",
  help: `
Usage: sv-sdk tenant:move --tenant <uuid> --to <database> [--batch <n>] [--resume]

Moves one tenant (organization) to another database of DATABASE_TOPOLOGY (both migrated and seeded):
marks its placement 'moving' and waits for the tenant's writes in flight, copies its rows (roles,
grants, assignments, templates, email sends) in batches, verifies per-table row counts and checksums
on both sides, points its placement at the target in one transaction, then removes its rows from the
source. The audit trail is not copied: events stay sealed in the database that wrote them, and
audit:verify, queries and exports read every database. Progress goes to stderr.

Running instances follow the placement without a restart: while the tenant moves its data can be
read and its writes are refused (503 TENANT_MOVING, Retry-After); after the flip they are served
from the target database. Every instance's DATABASE_TOPOLOGY must name the target database.

  --tenant <uuid>    the tenant (organization id)
  --to <database>    a database name of the topology, e.g. tenant_acme
  --batch <n>        rows per batch (default 500)
  --resume           continue an interrupted move (batches already copied are skipped)

An interrupted move leaves the tenant in state 'moving' (its writes are refused meanwhile); run the
same command with --resume to finish it.

Exit codes: 0 moved (or already there), 1 failed, 2 bad options or configuration.`,
  async run(args) {
    const options = parseOptions(args, {
      tenant: { type: "string" },
      to: { type: "string" },
      batch: { type: "string" },
      resume: { type: "boolean" },
    });
    if (!options.tenant) throw new UsageError("--tenant is required");
    if (!UUID.test(options.tenant))
      throw new UsageError(`--tenant must be a tenant id (uuid), got '${options.tenant}'`);
    if (!options.to) throw new UsageError("--to is required");
    const batchSize = options.batch === undefined ? undefined : Number(options.batch);
    if (batchSize !== undefined && (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000)) {
      throw new UsageError(`--batch must be a whole number from 1 to 10000, got '${options.batch}'`);
    }
    const tenantId = options.tenant.toLowerCase();
    const config = cliConfig();

    await withTopology(config, true, async (topology) => {
      if (!topology.databases[options.to!]) {
        throw new UsageError(
          `the topology has no database named '${options.to}' (it has: ${Object.keys(topology.databases).join(", ")})`,
        );
      }
      const bars = {
        copy: createProgress("copying"),
        verify: createProgress("verifying"),
        delete: createProgress("removing from source"),
      };
      let phase: TenantMoveProgress["phase"] | undefined;
      const onProgress = (p: TenantMoveProgress) => {
        if (phase && phase !== p.phase) bars[phase].finish();
        phase = p.phase;
        bars[p.phase].update(p.done, p.total, p.table);
      };
      let result: MoveTenantResult;
      try {
        result = await moveTenant({
          topology,
          catalog: coreCatalog(),
          tenantId,
          to: options.to!,
          batchSize,
          resume: options.resume,
          onProgress,
        });
      } catch (error) {
        if (phase) bars[phase].finish();
        if (error instanceof TenantMoveError)
          throw error.kind === "usage" ? new UsageError(error.message) : new CommandFailure(error.message);
        throw error;
      }
      if (phase) bars[phase].finish();
      if (result.alreadyThere) {
        process.stdout.write(`tenant ${tenantId} already lives on '${result.to}': nothing to move\n`);
        return;
      }
      for (const t of result.tables) {
        process.stdout.write(`${t.table.padEnd(32)} ${String(t.rows).padStart(8)} rows  ${t.checksum}\n`);
      }
      process.stdout.write(
        `moved tenant ${tenantId} from '${result.from}' to '${result.to}'${result.resumed ? " (resumed)" : ""}: ` +
          `${result.rowsCopied} rows copied, ${result.rowsRemoved} removed from the source\n`,
      );
      await withSdk(config, topology, (sdk) =>
        sdk.withContext({ actor: { type: "system", id: "cli" } }, () =>
          sdk.transaction(() =>
            sdk.audit.recordAuditEvent({
              action: "tenant.moved",
              tenantId: null,
              target: { type: "tenant", id: tenantId },
              metadata: {
                from: result.from,
                to: result.to,
                resumed: result.resumed,
                tables: result.tables.map((t) => ({ table: t.table, rows: t.rows, checksum: t.checksum })),
              },
            }),
          ),
        ),
      );
    });
    return 0;
  },
};
