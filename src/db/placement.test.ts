/**
 * What the modules declare about their tables (src/db/module.ts) against the database the
 * migrations build: every table declared, every declaration a table, tenant tables reach a tenant.
 */
import { describe, expect, it } from "vitest";
import { useTestSdk } from "../../test/support.js";
import { coreCatalog } from "../core-modules.js";

const { owner } = useTestSdk();
const catalog = coreCatalog();
const schemas = catalog.modules.map((m) => m.schema);

describe("table placement declared by the modules", () => {
  it("declare every table of their schemas, and only tables that exist", async () => {
    // Partitions are placed with their parent.
    const rows = await owner<{ name: string }[]>`
      select n.nspname || '.' || c.relname as name
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where n.nspname = any(${schemas}) and c.relkind in ('r', 'p') and not c.relispartition
       order by 1`;
    const tables = rows.map((r) => r.name);
    expect(tables.filter((t) => !catalog.tables.has(t))).toEqual([]);
    expect([...catalog.tables.keys()].filter((t) => !tables.includes(t))).toEqual([]);
  });

  it("give every tenant table a tenant_id, or a foreign key to a tenant table that has one", async () => {
    const withTenant = new Set(
      (
        await owner<{ name: string }[]>`
          select table_schema || '.' || table_name as name from information_schema.columns
           where column_name = 'tenant_id' and table_schema = any(${schemas})`
      ).map((r) => r.name),
    );
    const parents = await owner<{ child: string; parent: string }[]>`
      select cn.nspname || '.' || c.relname as child, rn.nspname || '.' || r.relname as parent
        from pg_constraint k
        join pg_class c on c.oid = k.conrelid join pg_namespace cn on cn.oid = c.relnamespace
        join pg_class r on r.oid = k.confrelid join pg_namespace rn on rn.oid = r.relnamespace
       where k.contype = 'f'`;
    for (const [table, placement] of catalog.tables) {
      if (placement.kind !== "tenant") continue;
      const reaches = withTenant.has(table) || parents.some((p) => p.child === table && withTenant.has(p.parent));
      expect(reaches, table).toBe(true);
    }
  });

  it("keep the control plane in one module, which defines the tenants", () => {
    expect(catalog.controlPlaneSchemas).toHaveLength(1);
    expect(catalog.tenantsTable?.split(".")[0]).toBe(catalog.controlPlaneSchemas[0]);
  });
});
