/**
 * `sv-sdk tenant:export <tenant> --out <file>`: a tenant's rows as a portable archive (src/db/tenant-export.ts).
 */
import { parseArgs } from "node:util";
import { coreCatalog } from "../../core-modules.js";
import { exportTenant, UnknownTenantError } from "../../db/tenant-export.js";
import { cliConfig, UsageError, withTopology, type Command } from "../command.js";

export const tenantExportCommand: Command = {
  name: "tenant:export",
  help: `
Usage: sv-sdk tenant:export <tenant> --out <file>

Writes one tenant's rows to <file> as a portable archive: gzip-compressed JSON lines — a header line,
one line per row ({"type":"row","table":…,"row":{…}}), and a manifest line last (format version,
tenant, database, migration level, and per table its row count and the sha256 of its lines). Rows are
read from the database the tenant lives on, in one consistent snapshot: the tenant's own row, then
every table holding its rows (roles, grants, assignments, templates, email sends …; caches are left
out). The audit trail has an export of its own (GET /api/v1/audit/events/export).

  <tenant>      the tenant's id (uuid) or slug (see sv-sdk tenants)
  --out <file>  where to write the archive (overwritten), e.g. acme.ndjson.gz

Exit codes: 0 exported, 1 failed, 2 bad options, configuration or an unknown tenant.`,
  async run(args) {
    let values: { out?: string };
    let positionals: string[];
    try {
      ({ values, positionals } = parseArgs({
        args,
        options: { out: { type: "string" } },
        strict: true,
        allowPositionals: true,
      }));
    } catch (error) {
      throw new UsageError((error as Error).message.split("\n")[0]!);
    }
    if (positionals.length !== 1) throw new UsageError("name one tenant (its id or slug)");
    if (!values.out) throw new UsageError("--out <file> is required");
    const config = cliConfig();
    const result = await withTopology(config, false, async (topology) => {
      try {
        return await exportTenant({ topology, catalog: coreCatalog(), tenant: positionals[0]!, out: values.out! });
      } catch (error) {
        if (error instanceof UnknownTenantError) throw new UsageError(error.message);
        throw error;
      }
    });
    for (const t of result.tables)
      process.stdout.write(`${t.name.padEnd(32)} ${String(t.rows).padStart(8)} rows  ${t.sha256}\n`);
    const rows = result.tables.reduce((n, t) => n + t.rows, 0);
    process.stdout.write(
      `exported tenant ${result.tenant.id} (${result.tenant.slug ?? result.tenant.name ?? ""}) from '${result.tenant.database}': ${rows} rows to ${result.file}\n`,
    );
    return 0;
  },
};
