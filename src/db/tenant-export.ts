/**
 * A tenant's rows as a portable archive (the exit strategy): one gzip-compressed JSON-lines file,
 * readable with `zcat` and any JSON parser, no sv-sdk needed.
 *
 *   {"type":"header", format, version, tenant, database, migrations, exportedAt}
 *   {"type":"row","table":"<schema>.<table>","row":{...}}        one line per row, table by table
 *   {"type":"manifest", ...the header's fields, "tables":[{ name, rows, sha256 }]}
 *
 * The tenant's own row (its tenants-table row, from the control plane) comes first, then every table
 * that holds its rows (src/db/tenant-move-plan.ts `planTables`, parents before children; caches are
 * left out: they are recomputed), read from the database the tenant is placed on inside one
 * REPEATABLE READ snapshot, in primary-key order. A table's `sha256` is over its row lines exactly as
 * written, newline included: `grep` a table's lines and hash them to check it. The audit trail stays
 * where it was written (it is not a tenant-placed table) and is exported with `GET /api/v1/audit/events/export`.
 */
import { createHash } from "node:crypto";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { createGzip } from "node:zlib";
import postgres from "postgres";
import { appliedMigrationCount, shippedMigrationCount } from "./migration-count.js";
import type { ModuleCatalog } from "./module.js";
import { listTenants, type TenantListing } from "./tenant-list.js";
import { planTables, qualified, ident } from "./tenant-move-plan.js";
import type { Topology } from "./topology.js";

export const EXPORT_FORMAT = "sv-sdk.tenant-export";
export const EXPORT_VERSION = 1;

/** The tenant named does not exist: the command's usage error (exit 2). */
export class UnknownTenantError extends Error {}

export interface ExportedTable {
  name: string;
  rows: number;
  sha256: string;
}

export interface TenantExportResult {
  tenant: TenantListing;
  tables: ExportedTable[];
  file: string;
}

export interface ExportTenantOptions {
  topology: Topology;
  catalog: ModuleCatalog;
  /** The tenant's id or slug. */
  tenant: string;
  /** The archive's path (overwritten). */
  out: string;
  /** Rows fetched per round trip. */
  batchSize?: number;
}

/**
 * Writes a tenant's rows to `out`.
 *
 * @example
 * const { tables } = await exportTenant({ topology, catalog: coreCatalog(), tenant: "acme", out: "acme.ndjson.gz" });
 */
export async function exportTenant(options: ExportTenantOptions): Promise<TenantExportResult> {
  const { topology, catalog } = options;
  const connect = (database: string) =>
    postgres(topology.databases[database]!.url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  const main = connect("main");
  let tenant: TenantListing;
  let ownRow: unknown;
  try {
    const [found] = await listTenants(main, catalog, topology, options.tenant);
    if (!found) throw new UnknownTenantError(`no tenant has the id or slug '${options.tenant}'`);
    tenant = found;
    const [row] = await main.unsafe<{ row: unknown }[]>(
      `select to_jsonb(t) as row from ${qualified(catalog.tenantsTable!)} t where t.id = $1::uuid`,
      [tenant.id],
    );
    ownRow = row?.row;
  } finally {
    await main.end({ timeout: 5 });
  }
  if (!topology.databases[tenant.database]) {
    throw new Error(`tenant ${tenant.id} lives on database '${tenant.database}', which the topology does not define`);
  }

  const placed = connect(tenant.database);
  const gzip = createGzip();
  const file = createWriteStream(options.out);
  const finished = once(file, "close");
  gzip.pipe(file);
  const write = async (line: string) => {
    if (!gzip.write(line)) await once(gzip, "drain");
  };
  const tables: ExportedTable[] = [];
  try {
    await placed.begin("isolation level repeatable read read only", async (transaction) => {
      // The helpers below only run queries: the transaction serves them as a client would.
      const tx = transaction as unknown as postgres.Sql;
      const header = {
        format: EXPORT_FORMAT,
        version: EXPORT_VERSION,
        tenant: { id: tenant.id, name: tenant.name, slug: tenant.slug },
        database: tenant.database,
        region: tenant.region,
        migrations: { applied: await appliedMigrationCount(tx), shipped: shippedMigrationCount() },
        exportedAt: new Date().toISOString(),
      };
      await write(`${JSON.stringify({ type: "header", ...header })}\n`);

      const tableOf = async (name: string, rows: AsyncIterable<unknown[]> | unknown[][]) => {
        const hash = createHash("sha256");
        let count = 0;
        for await (const batch of rows) {
          for (const row of batch) {
            const line = `${JSON.stringify({ type: "row", table: name, row })}\n`;
            hash.update(line);
            count++;
            await write(line);
          }
        }
        tables.push({ name, rows: count, sha256: hash.digest("hex") });
      };
      await tableOf(catalog.tenantsTable!, ownRow === undefined ? [] : [[ownRow]]);
      for (const plan of await planTables(tx, catalog)) {
        if (plan.derived) continue;
        const order = plan.primaryKey.map((c) => `t.${ident(c)}`).join(", ");
        const cursor = transaction
          .unsafe<{ row: unknown }[]>(
            `select to_jsonb(t) as row from ${plan.sql} t where ${plan.filter} order by ${order}`,
            [tenant.id],
          )
          .cursor(options.batchSize ?? 500);
        await tableOf(
          plan.name,
          mapBatches(cursor, (r) => r.row),
        );
      }
      await write(`${JSON.stringify({ type: "manifest", ...header, tables })}\n`);
    });
    gzip.end();
    await finished;
  } catch (error) {
    gzip.destroy();
    file.destroy();
    throw error;
  } finally {
    await placed.end({ timeout: 5 });
  }
  return { tenant, tables, file: options.out };
}

async function* mapBatches<T, U>(batches: AsyncIterable<T[]>, fn: (row: T) => U): AsyncIterable<U[]> {
  for await (const batch of batches) yield batch.map(fn);
}
