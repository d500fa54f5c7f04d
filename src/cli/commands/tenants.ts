/**
 * `sv-sdk tenants`: every tenant with where it lives (database, region) and whether it is moving.
 */
import postgres from "postgres";
import { coreCatalog } from "../../core-modules.js";
import { listTenants, type TenantListing } from "../../db/tenant-list.js";
import { cliConfig, parseOptions, withTopology, type Command } from "../command.js";

/** Rows as an aligned text table, a header first. */
export function tenantTable(tenants: TenantListing[]): string {
  const header = ["ID", "NAME", "SLUG", "DATABASE", "REGION", "STATE"];
  const rows = tenants.map((t) => [t.id, t.name ?? "", t.slug ?? "", t.database, t.region ?? "-", t.state]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows]
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export const tenantsCommand: Command = {
  name: "tenants",
  help: `
Usage: sv-sdk tenants [--json]

Lists every tenant (organization): its id, name and slug, the database of DATABASE_TOPOLOGY its rows
live on ('main' is the default placement), that database's region, and its state ('moving' while
sv-sdk tenant:move runs: its writes are refused meanwhile). Read from the control plane (main).

  --json   one JSON array instead of the table

Exit codes: 0 listed, 1 failed, 2 bad options or configuration.`,
  async run(args) {
    const options = parseOptions(args, { json: { type: "boolean" } });
    const config = cliConfig();
    const tenants = await withTopology(config, false, async (topology) => {
      const main = postgres(topology.databases.main!.url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
      try {
        return await listTenants(main, coreCatalog(), topology);
      } finally {
        await main.end({ timeout: 5 });
      }
    });
    process.stdout.write(options.json ? `${JSON.stringify(tenants, null, 2)}\n` : `${tenantTable(tenants)}\n`);
    return 0;
  },
};
