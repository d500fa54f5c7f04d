/**
 * A fifth module is one folder and one registration line: test/notes-module/ declares a tenant table
 * and its migrations, names no database, and this file registers it (`modules: [notesModule]`). The
 * platform migrates it on every database, keeps tenants apart in it, and moves its rows with their
 * tenant — after which the module's verbs, unchanged, follow the tenant to its new database.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { coreCatalog } from "../src/core-modules.js";
import { moveTenant } from "../src/db/tenant-move.js";
import { createSdk, type Sdk } from "../src/index.js";
import { notesModule, type NotesModule } from "./notes-module/index.js";
import { useTwoDatabases } from "./support.js";

const databases = useTwoDatabases();
let sdk: Sdk;
let notes: NotesModule;

async function createTenant(name: string): Promise<string> {
  const id = randomUUID();
  await databases.mainSql`insert into auth.organizations (id, name, slug) values (${id}, ${name}, ${`${name}-${id}`})`;
  return id;
}

const countOn = async (sql: typeof databases.mainSql, tenantId: string) =>
  (await sql<{ n: number }[]>`select count(*)::int as n from notes.notes where tenant_id = ${tenantId}`)[0]!.n;

beforeAll(async () => {
  const { main, tenantDb } = databases;
  sdk = createSdk({
    environment: "test",
    topology: {
      databases: {
        main: { url: main.url, appUrl: main.appUrl },
        tenant_db: { url: tenantDb.url, appUrl: tenantDb.appUrl },
      },
    },
    modules: [notesModule],
  });
  notes = sdk.modules.notes as unknown as NotesModule;
});
afterAll(() => sdk?.close());

describe("a fifth module (notes)", () => {
  it("is migrated on every database of the topology by sdk.migrate(), in a ledger of its own", async () => {
    const reports = await sdk.migrate();
    expect(reports.map((r) => [r.database, r.extra])).toEqual([
      ["main", [{ name: "notes", appliedBefore: 0, appliedNow: 1, total: 1 }]],
      ["tenant_db", [{ name: "notes", appliedBefore: 0, appliedNow: 1, total: 1 }]],
    ]);
    for (const sql of [databases.mainSql, databases.tenantSql]) {
      expect((await sql`select to_regclass('notes.notes') as t`)[0]!.t).toBe("notes.notes");
    }
  });

  it("keeps each tenant's notes to that tenant", async () => {
    const [a, b] = [await createTenant("notes-a"), await createTenant("notes-b")];
    await notes.add(a, "first of a");
    await notes.add(b, "first of b");
    expect((await notes.list(a)).map((n) => n.body)).toEqual(["first of a"]);
    expect((await notes.list(b)).map((n) => n.body)).toEqual(["first of b"]);
  });

  it("moves with its tenant, and its verbs follow the tenant to the new database", async () => {
    const tenant = await createTenant("notes-moving");
    await notes.add(tenant, "before the move");
    await notes.add(tenant, "also before");
    expect(await countOn(databases.mainSql, tenant)).toBe(2);

    const result = await moveTenant({
      topology: databases.topology,
      catalog: coreCatalog([notesModule]),
      tenantId: tenant,
      to: "tenant_db",
    });
    expect(result.tables.find((t) => t.table === "notes.notes")?.rows).toBe(2);
    expect(await countOn(databases.mainSql, tenant)).toBe(0);
    expect(await countOn(databases.tenantSql, tenant)).toBe(2);

    // The running SDK follows the placement: reads and writes reach the tenant's database.
    await expect
      .poll(async () => (await notes.list(tenant)).map((n) => n.body), { timeout: 5_000 })
      .toEqual(["before the move", "also before"]);
    await notes.add(tenant, "after the move");
    expect(await countOn(databases.tenantSql, tenant)).toBe(3);
    expect(await countOn(databases.mainSql, tenant)).toBe(0);
  });
});
