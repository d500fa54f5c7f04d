import { describe, expect, it } from "vitest";
import { useTestSdk } from "../../test/support.js";
import { TABLE_PLACEMENT } from "./placement.js";

const { owner } = useTestSdk();

describe("table placement labels", () => {
  it("label every table of the four schemas, and name only tables that exist", async () => {
    // Partitions are placed with their parent.
    const rows = await owner<{ name: string }[]>`
      select n.nspname || '.' || c.relname as name
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where n.nspname in ('auth', 'email', 'audit', 'permissions')
         and c.relkind in ('r', 'p') and not c.relispartition
       order by 1`;
    const tables = rows.map((r) => r.name);
    expect(tables.filter((t) => !TABLE_PLACEMENT[t])).toEqual([]);
    expect(Object.keys(TABLE_PLACEMENT).filter((t) => !tables.includes(t))).toEqual([]);
  });

  it("give every tenant-placed table a tenant_id, or a path to one", async () => {
    const withTenant = await owner<{ name: string }[]>`
      select table_schema || '.' || table_name as name from information_schema.columns
       where column_name = 'tenant_id' and table_schema in ('auth', 'email', 'audit', 'permissions')`;
    const names = new Set(withTenant.map((r) => r.name));
    for (const [table, placement] of Object.entries(TABLE_PLACEMENT)) {
      if (placement.kind !== "tenant") continue;
      expect(placement.via ? names.has(placement.via) : names.has(table), table).toBe(true);
    }
  });

  it("keep the control plane in auth", () => {
    for (const [table, placement] of Object.entries(TABLE_PLACEMENT)) {
      expect(placement.kind === "control-plane", table).toBe(table.startsWith("auth."));
    }
  });
});
