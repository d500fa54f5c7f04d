/**
 * The audit trail when a tenant lives in a database of its own: two real databases cloned from the
 * migrated template (`main` and `tenant_db`), a tenant with history in main moved to tenant_db with
 * `moveTenant`. Its history moves with it (re-sealed on tenant_db behind an anchor seal naming main's
 * head, history-move.ts); its new events are written in tenant_db whatever the scope they are
 * recorded under; reads merge both databases; each database is sealed and verified on its own, and a
 * broken row is reported with its database. Then the move is finalized and the tenant moved back.
 */
import { coreCatalog } from "../../core-modules.js";
import { randomUUID } from "node:crypto";
import type postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cheapHashingTestSdkOptions, outboxSettled, useTwoDatabases } from "../../../test/support.js";
import { createCoreRouter } from "../../core-modules.js";
import { drizzle } from "drizzle-orm/postgres-js";
import type { TenantSwitch } from "../../db/module.js";
import { moveTenant } from "../../db/tenant-move.js";
import { finalizeTenantMove } from "../../db/tenant-move-admin.js";
import { retainWhere } from "../../db/tenant-move-rows.js";
import type { Database } from "../../db/unit-of-work.js";
import type { Topology } from "../../db/topology.js";
import { createSdk, type Sdk } from "../../index.js";
import { createModuleContext } from "../../db/module-context.js";
import { silentLogger } from "../../logger.js";
import { auditModule, type AuditEvent } from "./index.js";

const databases = useTwoDatabases();
let ownerA: postgres.Sql;
let ownerB: postgres.Sql;
let topology: Topology;
let sdk: Sdk;
/** Placed on tenant_db by a move; `stay` has no placement (lives on main). */
const moved = randomUUID();
const stay = randomUUID();
/** target_type of this file's history events. */
const history = randomUUID();

/** Seals both databases until nothing is left unsealed (other test files' transactions hold the horizon back for a moment). */
async function sealAll() {
  for (let attempt = 0; attempt < 100; attempt++) {
    await sdk.audit.seal();
    const result = await sdk.audit.verify();
    if (!result.ok || result.unsealedRows === 0) return result;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("rows stayed unsealed for 10 s");
}

async function targetsIn(sql: postgres.Sql, type: string) {
  const rows = await sql<{ tenant_id: string | null; target_id: string }[]>`
    select tenant_id, target_id from audit.audit_logs where target_type = ${type} order by target_id`;
  return rows.map((r) => `${r.tenant_id ?? "platform"}:${r.target_id}`);
}

async function exported(filters: Parameters<Sdk["audit"]["exportEvents"]>[0]): Promise<AuditEvent[]> {
  const text = await new Response(sdk.audit.exportEvents(filters, "ndjson")).text();
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as AuditEvent);
}

beforeAll(async () => {
  ({ mainSql: ownerA, tenantSql: ownerB, topology } = databases);
  const seeder = createSdk(cheapHashingTestSdkOptions(databases.tenantDb));
  await seeder.seed();
  await seeder.close();
  sdk = createSdk(cheapHashingTestSdkOptions(databases.main, { topology }));

  for (const id of [moved, stay])
    await ownerA`insert into auth.organizations (id, name, slug) values (${id}, 'org', ${`org-${id}`})`;
  // History written while the tenant lived on main: sealed there, plus one event not sealed yet.
  await sdk.withTenant(moved, () =>
    sdk.audit.recordAuditEvents(
      [1, 2, 3].map((i) => ({ action: "doc.created", target: { type: history, id: `h${i}` } })),
    ),
  );
  expect(await sealAll()).toMatchObject({ ok: true });
  await sdk.withTenant(moved, () =>
    sdk.audit.recordAuditEvent({ action: "doc.created", target: { type: history, id: "h4" } }),
  );
  await moveTenant({ catalog: coreCatalog(), topology, tenantId: moved, to: "tenant_db" });
}, 120_000);

afterAll(async () => {
  await sdk?.close();
});

describe("audit across databases", () => {
  it("moves the trail with the tenant: copied to tenant_db, set aside on main, the move recorded there", async () => {
    expect(await targetsIn(ownerB, history)).toEqual([`${moved}:h1`, `${moved}:h2`, `${moved}:h3`, `${moved}:h4`]);
    expect(await targetsIn(ownerA, history)).toEqual([]);
    const [kept] = await ownerA<{ n: number }[]>`
      select count(*)::int as n from platform.tenant_move_retained where tenant_id = ${moved} and table_name = 'audit.audit_logs'`;
    expect(kept!.n).toBe(4);
    const [event] = await ownerA<{ metadata: { tenantId: string; rows: number; sourceHead: string } }[]>`
      select metadata from audit.audit_logs where action = 'audit.history_moved' and target_id = ${moved}`;
    expect(event!.metadata).toMatchObject({ tenantId: moved, rows: 4 });
    // The anchor seals the copied rows and names main's head of the tenant's chain.
    const [anchor] = await ownerB<{ prev_seal_hash: string; row_count: number; anchor: { from: string } }[]>`
      select prev_seal_hash, row_count, anchor from audit.audit_seals where tenant_id = ${moved} and anchor is not null`;
    expect(anchor).toMatchObject({
      prev_seal_hash: event!.metadata.sourceHead,
      row_count: 4,
      anchor: { from: "main" },
    });
    const result = await sdk.audit.verify();
    expect(result).toMatchObject({ ok: true });
    if (!result.ok) return;
    expect(result.anchors).toEqual([
      { database: "tenant_db", tenant: moved, from: "main", sourceHead: event!.metadata.sourceHead, rows: 4 },
    ]);
    expect(result.databases.main!.heads[moved]).toBeUndefined();
  });

  it("names a copied row altered on tenant_db", async () => {
    const [victim] = await ownerB<{ id: string }[]>`
      select id::text from audit.audit_logs where target_type = ${history} and target_id = 'h2'`;
    const tamper = (action: string) =>
      ownerB.begin(async (tx) => {
        await tx`alter table audit.audit_logs disable trigger audit_logs_append_only`;
        await tx`update audit.audit_logs set action = ${action} where id = ${victim!.id}`;
        await tx`alter table audit.audit_logs enable trigger audit_logs_append_only`;
      });
    await tamper("doc.deleted");
    try {
      expect(await sdk.audit.verify()).toMatchObject({
        ok: false,
        database: "tenant_db",
        tenantId: moved,
        firstBadRow: { id: victim!.id, reason: "altered" },
      });
    } finally {
      await tamper("doc.created");
    }
    expect(await sdk.audit.verify()).toMatchObject({ ok: true });
  });

  it("records a moved tenant's events in its database, in its own context and under the platform scope", async () => {
    const marker = randomUUID();
    await sdk.withTenant(moved, () =>
      sdk.audit.recordAuditEvent({ action: "doc.created", target: { type: marker, id: "own" } }),
    );
    await sdk.withTenant("*", () =>
      sdk.audit.recordAuditEvent({ action: "doc.created", tenantId: moved, target: { type: marker, id: "star" } }),
    );
    // A batch under "*" for several tenants and the platform: each event where its tenant lives.
    await sdk.withTenant("*", () =>
      sdk.audit.recordAuditEvents([
        { action: "doc.created", tenantId: moved, target: { type: marker, id: "batch-moved" } },
        { action: "doc.created", tenantId: stay, target: { type: marker, id: "batch-stay" } },
        { action: "doc.created", tenantId: null, target: { type: marker, id: "batch-platform" } },
      ]),
    );
    // Outside any unit of work too (a unit of its own carries the tenant).
    await sdk.withContext({ tenantId: moved }, () =>
      sdk.audit.recordAuditEvent({ action: "doc.created", target: { type: marker, id: "bare" } }),
    );
    // Still the caller's transaction where the database is the same: a tenant of main under "*",
    // and a moved tenant's event in a unit pinned to its database (how platform workers visit each).
    const rolledBack = (tenantId: string) => async () => {
      await sdk.audit.recordAuditEvent({
        action: "doc.created",
        tenantId,
        target: { type: marker, id: "rolled-back" },
      });
      throw new Error("roll back");
    };
    await expect(sdk.withTenant("*", rolledBack(stay))).rejects.toThrow("roll back");
    await expect(sdk.router.onDatabase("tenant_db", () => sdk.withTenant("*", rolledBack(moved)))).rejects.toThrow(
      "roll back",
    );

    // Events recorded under the platform scope (a unit on main) reach tenant_db through main's outbox.
    await outboxSettled(sdk);
    expect(await targetsIn(ownerB, marker)).toEqual([
      `${moved}:bare`,
      `${moved}:batch-moved`,
      `${moved}:own`,
      `${moved}:star`,
    ]);
    expect(await targetsIn(ownerA, marker)).toEqual(["platform:batch-platform", `${stay}:batch-stay`]);
  });

  // tenant_db is first opened by the nested level that enters the moved tenant: the router holds
  // that transaction at the caller's outermost level, so it commits or rolls back with the caller.
  it("rolls a moved tenant's event back with a platform-scope unit that never opened its database", async () => {
    const marker = randomUUID();
    await expect(
      sdk.withTenant("*", async () => {
        await sdk.audit.recordAuditEvent({
          action: "doc.created",
          tenantId: moved,
          target: { type: marker, id: "rolled-back" },
        });
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    expect(await targetsIn(ownerB, marker)).toEqual([]);
  });

  it("reads and exports a tenant's trail from every database, newest first, each event once", async () => {
    const marker = randomUUID();
    await sdk.withTenant(moved, () =>
      sdk.audit.recordAuditEvents(
        [1, 2].map((i) => ({ action: "doc.created", target: { type: marker, id: `new${i}` } })),
      ),
    );
    const newer = await sdk.audit.queryEvents({ tenantId: moved, targetType: marker });
    expect(newer.events.map((e) => e.target?.id).sort()).toEqual(["new1", "new2"]);

    // History from main and new events from tenant_db, one page at a time.
    const pages: AuditEvent[] = [];
    let cursor: string | null = null;
    do {
      const page = await sdk.audit.queryEvents({ tenantId: moved, action: "doc.", limit: 2 }, cursor);
      pages.push(...page.events);
      cursor = page.nextCursor;
    } while (cursor);
    const all = await sdk.audit.queryEvents({ tenantId: moved, action: "doc.", limit: 200 });
    expect(pages).toEqual(all.events);
    const ids = pages.map((e) => e.target?.id);
    expect(ids).toEqual(expect.arrayContaining(["h1", "h4", "new1", "new2"]));
    expect(pages.every((e) => e.tenantId === moved)).toBe(true);
    const times = pages.map((e) => e.occurredAt);
    expect(times).toEqual([...times].sort().reverse());
    expect(ids.indexOf("new1")).toBeLessThan(ids.indexOf("h4"));

    expect(await exported({ tenantId: moved, action: "doc." })).toEqual(all.events);
    const platformWide = await exported({ tenantId: "*", targetType: marker });
    expect(platformWide.map((e) => e.target?.id).sort()).toEqual(["new1", "new2"]);
    expect((await sdk.audit.queryEvents({ tenantId: "*", targetType: history })).events).toHaveLength(4);
  });

  it("pages through events with the same time and id in both databases", async () => {
    const marker = randomUUID();
    const at = "2031-05-05T05:05:05.123456Z";
    for (const [sql, id] of [
      [ownerA, "a"],
      [ownerB, "b"],
    ] as const) {
      for (const rowId of ["9000000001", "9000000002"]) {
        await sql`insert into audit.audit_logs (id, occurred_at, tenant_id, actor_type, action, target_type, target_id)
                  overriding system value values (${rowId}, ${at}, ${moved}, 'system', 'doc.tied', ${marker}, ${`${id}${rowId}`})`;
      }
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await sdk.audit.queryEvents({ tenantId: moved, targetType: marker, limit: 1 }, cursor);
      seen.push(...page.events.map((e) => String(e.target?.id)));
      cursor = page.nextCursor;
    } while (cursor);
    // tenant_db sorts after main, so before it newest first.
    expect(seen).toEqual(["b9000000002", "a9000000002", "b9000000001", "a9000000001"]);
    expect((await exported({ tenantId: moved, targetType: marker })).map((e) => e.target!.id)).toEqual(seen);
    await expect(
      sdk.audit.queryEvents({}, Buffer.from(JSON.stringify([at, "1", "nowhere"])).toString("base64url")),
    ).rejects.toMatchObject({
      code: "INVALID_CURSOR",
    });
  });

  it("seals and verifies both databases after the move and new events", async () => {
    await sdk.withTenant(moved, () =>
      sdk.audit.recordAuditEvent({ action: "doc.created", target: { type: history, id: "after" } }),
    );
    const result = await sealAll();
    expect(result).toMatchObject({ ok: true, unsealedRows: 0 });
    if (!result.ok) return;
    expect(Object.keys(result.databases)).toEqual(["main", "tenant_db"]);
    // The tenant's history and new events are chained in tenant_db.
    expect(Object.keys(result.databases.main!.heads)).toEqual(expect.arrayContaining([stay, "platform"]));
    // main holds a chain of the moved tenant again: the tied rows written there by hand above (as a late
    // event would be) are sealed there in a chain of their own; the move back anchors after it.
    expect(Object.keys(result.databases.tenant_db!.heads)).toEqual([moved]);
    const [sealed] = await ownerB<
      { n: number }[]
    >`select count(*)::int as n from audit.audit_seals where tenant_id = ${moved}`;
    expect(sealed!.n).toBeGreaterThan(0);
  });

  it("names the database of a row altered after it was sealed", async () => {
    await sdk.withTenant(moved, () =>
      sdk.audit.recordAuditEvent({ action: "doc.created", target: { type: history, id: "victim" } }),
    );
    expect(await sealAll()).toMatchObject({ ok: true });
    const [victim] = await ownerB<
      { id: string }[]
    >`select id::text from audit.audit_logs where target_type = ${history} and target_id = 'victim'`;
    const tamper = (action: string) =>
      ownerB.begin(async (tx) => {
        await tx`alter table audit.audit_logs disable trigger audit_logs_append_only`;
        await tx`update audit.audit_logs set action = ${action} where id = ${victim!.id}`;
        await tx`alter table audit.audit_logs enable trigger audit_logs_append_only`;
      });
    await tamper("doc.deleted");
    try {
      expect(await sdk.audit.verify()).toMatchObject({
        ok: false,
        database: "tenant_db",
        tenantId: moved,
        firstBadRow: { id: victim!.id, reason: "altered" },
      });
    } finally {
      await tamper("doc.created");
    }
    expect(await sdk.audit.verify()).toMatchObject({ ok: true });
  });

  it("keeps partitions ahead and applies retention in every database", async () => {
    const created = await sdk.audit.ensurePartitions(6);
    expect(new Set(created.map((c) => c.database))).toEqual(new Set(["main", "tenant_db"]));
    await ownerB`create table audit.audit_logs_y2020m01 partition of audit.audit_logs for values from ('2020-01-01 00:00+00') to ('2020-02-01 00:00+00')`;
    const router = createCoreRouter(topology, { asOwner: true });
    try {
      const maintenance = auditModule.create(createModuleContext(router, auditModule, silentLogger), {});
      const result = await maintenance.applyRetention({ retentionDays: 10, now: new Date("2020-02-20T00:00:00Z") });
      expect(result.dropped).toEqual([
        {
          database: "tenant_db",
          partition: "audit_logs_y2020m01",
          from: "2020-01-01T00:00:00.000Z",
          to: "2020-02-01T00:00:00.000Z",
        },
      ]);
    } finally {
      await router.close();
    }
    for (const sql of [ownerA, ownerB]) {
      const [event] = await sql<
        { n: number }[]
      >`select count(*)::int as n from audit.audit_logs where action = 'audit.retention_applied'`;
      expect(event!.n).toBe(1);
    }
    expect(await sealAll()).toMatchObject({ ok: true });
  });

  it("copies a history once when the hook runs again after a crash between the copy and the set-aside", async () => {
    const crashed = randomUUID();
    await sdk.withTenant("*", () =>
      sdk.audit.recordAuditEvents(
        [1, 2].map((i) => ({ action: "doc.created", tenantId: crashed, target: { type: history, id: `c${i}` } })),
      ),
    );
    const switchOf = (retain: TenantSwitch["retain"]): TenantSwitch => ({
      ...{ tenantId: crashed, from: "main", to: "tenant_db", report: () => {}, retain },
      source: drizzle(ownerA) as unknown as Database,
      target: drizzle(ownerB) as unknown as Database,
    });
    const crash = switchOf(async () => {
      throw new Error("crashed");
    });
    await expect(auditModule.onTenantSwitched!(crash)).rejects.toThrow("crashed");
    // The copy and its anchor committed; the source rows are still live (the history shows twice until the rerun).
    expect((await targetsIn(ownerB, history)).filter((t) => t.startsWith(crashed))).toHaveLength(2);
    expect((await targetsIn(ownerA, history)).filter((t) => t.startsWith(crashed))).toHaveLength(2);

    await auditModule.onTenantSwitched!(
      switchOf((tx, table, where) => retainWhere(tx, crashed, `audit.${table}`, where)),
    );
    expect((await targetsIn(ownerB, history)).filter((t) => t.startsWith(crashed))).toEqual([
      `${crashed}:c1`,
      `${crashed}:c2`,
    ]);
    expect((await targetsIn(ownerA, history)).filter((t) => t.startsWith(crashed))).toEqual([]);
    const [anchors] = await ownerB<{ n: number }[]>`
      select count(*)::int as n from audit.audit_seals where tenant_id = ${crashed} and anchor is not null`;
    expect(anchors!.n).toBe(1);
    expect(await sealAll()).toMatchObject({ ok: true, unsealedRows: 0 });
  });

  it("finalizes the move: the history's source rows are deleted and both databases still verify", async () => {
    const { rowsDeleted } = await finalizeTenantMove({ topology, catalog: coreCatalog(), tenantId: moved });
    expect(rowsDeleted).toBeGreaterThanOrEqual(4);
    const [kept] = await ownerA<{ n: number }[]>`
      select count(*)::int as n from platform.tenant_move_retained where tenant_id = ${moved}`;
    expect(kept!.n).toBe(0);
    expect(await sealAll()).toMatchObject({ ok: true, unsealedRows: 0 });
  });

  it("moves the tenant back: its whole history returns to main, anchored on tenant_db's head, once", async () => {
    const before = (await sdk.audit.queryEvents({ tenantId: moved, targetType: history, limit: 100 })).events;
    await sealAll();
    const [tdbHead] = await ownerB<{ seal_hash: string }[]>`
      select seal_hash from audit.audit_seals where tenant_id = ${moved} order by id desc limit 1`;
    await moveTenant({ catalog: coreCatalog(), topology, tenantId: moved, to: "main" });
    expect((await targetsIn(ownerB, history)).filter((t) => t.startsWith(moved))).toEqual([]);
    const after = (await sdk.audit.queryEvents({ tenantId: moved, targetType: history, limit: 100 })).events;
    expect(after.map((e) => [e.occurredAt, e.target?.id])).toEqual(before.map((e) => [e.occurredAt, e.target?.id]));
    const result = await sealAll();
    expect(result).toMatchObject({ ok: true, unsealedRows: 0 });
    if (!result.ok) return;
    expect(result.anchors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ database: "main", tenant: moved, from: "tenant_db", sourceHead: tdbHead!.seal_hash }),
      ]),
    );
    expect(result.databases.main!.heads[moved]).toBeDefined();
    // main already had a chain of the tenant (the tied rows): the anchor follows its last seal there.
    const seals = await ownerA<{ seal_hash: string; anchor: { previous: string | null } | null }[]>`
      select seal_hash, anchor from audit.audit_seals where tenant_id = ${moved} order by id`;
    const at = seals.findIndex((x) => x.anchor !== null);
    expect(at).toBeGreaterThan(0);
    expect(seals[at]!.anchor!.previous).toBe(seals[at - 1]!.seal_hash);
    expect(result.databases.tenant_db!.heads[moved]).toBeUndefined();
  });
});
