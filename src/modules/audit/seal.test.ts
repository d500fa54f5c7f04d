import { randomUUID } from "node:crypto";
import type postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  cheapHashingTestSdkOptions,
  createIsolatedTopology,
  databasesOf,
  type IsolatedTopology,
} from "../../../test/support.js";
import { createCoreRouter } from "../../core-modules.js";
import { databaseOf, parseTopology } from "../../db/topology.js";
import { createSdk, type Sdk } from "../../index.js";
import { createModuleContext } from "../../db/module-context.js";
import { silentLogger } from "../../logger.js";
import { auditModule } from "./index.js";
import { SEAL_CHUNK_ROWS } from "./seal.js";

// Sealing needs committed rows and a moving transaction horizon: databases of its own, in the run's
// topology. `owner` is the owner of the audit schema's database (audit_db in audit-split).
let db: IsolatedTopology;
let sdk: Sdk;
let owner: postgres.Sql;
let auditDatabase: string;

beforeAll(async () => {
  db = await createIsolatedTopology();
  sdk = createSdk(cheapHashingTestSdkOptions(db.main, db.placement));
  auditDatabase = databaseOf(db.topology, "audit");
  owner = db.ownerSqlFor("audit");
});
afterAll(async () => {
  await sdk?.close();
  await db?.drop();
});

/**
 * Seals until every committed row is sealed. Transactions of other test files on the same server
 * hold the horizon back for a moment, so this retries instead of assuming one tick suffices.
 */
async function sealAll() {
  for (let attempt = 0; attempt < 100; attempt++) {
    await sdk.audit.seal();
    const result = await sdk.audit.verify();
    if (result.ok && result.unsealedRows === 0) return result;
    if (!result.ok) return result;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("rows stayed unsealed for 10 s");
}

/** Alters the trail as the owner, with the append-only trigger briefly off. */
async function asTamperingOwner(fn: (tx: postgres.TransactionSql) => Promise<unknown>) {
  await owner.begin(async (tx) => {
    await tx`alter table audit.audit_logs disable trigger audit_logs_append_only`;
    await fn(tx);
    await tx`alter table audit.audit_logs enable trigger audit_logs_append_only`;
  });
}

/** A row as JSON text, exactly (microseconds, bytea), to put it back after a tamper test. */
async function snapshotRow(table: "audit_logs" | "audit_seals", id: string) {
  const [row] = await owner.unsafe<{ j: string }[]>(
    `select row_to_json(t)::text as j from audit.${table} t where id = $1`,
    [id],
  );
  return row!.j;
}

async function restoreRow(table: "audit_logs" | "audit_seals", json: string) {
  await owner.unsafe(
    `insert into audit.${table} overriding system value select * from json_populate_record(null::audit.${table}, ($1::text)::json)`,
    [json],
  );
}

async function writeEvents(tenantId: string | null, count: number, marker: string) {
  await sdk.transaction(() =>
    sdk.audit.recordAuditEvents(
      Array.from({ length: count }, (_, i) => ({
        action: "doc.edited",
        tenantId,
        target: { type: marker, id: String(i) },
      })),
    ),
  );
}

async function idOf(marker: string, targetId: string) {
  const [row] = await owner<{ id: string }[]>`
    select id::text from audit.audit_logs where target_type = ${marker} and target_id = ${targetId}`;
  return row!.id;
}

describe("sealing and verify", () => {
  it("seals committed rows per tenant into chains and verifies them", async () => {
    const marker = randomUUID();
    const [tenantA, tenantB] = [randomUUID(), randomUUID()];
    await writeEvents(tenantA, 5, marker);
    await writeEvents(tenantB, 3, marker);
    await writeEvents(null, 2, marker);
    const result = await sealAll();
    expect(result).toMatchObject({ ok: true, unsealedRows: 0 });
    if (!result.ok) return;
    expect(result.rows).toBeGreaterThanOrEqual(10);
    expect(Object.keys(result.databases[auditDatabase]!.heads)).toEqual(
      expect.arrayContaining([tenantA, tenantB, "platform"]),
    );

    // A second round chains onto the first.
    await writeEvents(tenantA, 2, marker);
    const again = await sealAll();
    expect(again).toMatchObject({ ok: true, unsealedRows: 0 });
    const [chain] = await owner<{ n: number; linked: number }[]>`
      select count(*)::int as n, count(prev_seal_hash)::int as linked from audit.audit_seals where tenant_id = ${tenantA}`;
    expect(chain).toEqual({ n: 2, linked: 1 });
  });

  it("seals a backlog in chunks of their own transactions, never splitting one transaction's rows", async () => {
    const tenant = randomUUID();
    // A bulk import: three transactions, the last larger than a chunk on its own.
    const sizes = [SEAL_CHUNK_ROWS * 0.6, SEAL_CHUNK_ROWS * 0.6, SEAL_CHUNK_ROWS * 1.4];
    for (const n of sizes) {
      await owner`insert into audit.audit_logs (tenant_id, actor_type, action, target_type, target_id)
        select ${tenant}::uuid, 'system', 'doc.imported', 'doc', 'd-' || k from generate_series(1, ${n}::int) k`;
    }
    const result = await sealAll();
    expect(result).toMatchObject({ ok: true, unsealedRows: 0 });
    // Several seals, each of whole transactions (the horizon and the chunks decide where they
    // end): consecutive transactions add up to each seal, and none holds more than a chunk's
    // rows plus the transaction past them.
    const seals = await owner<{ row_count: number }[]>`
      select row_count from audit.audit_seals where tenant_id = ${tenant}::uuid order by id`;
    expect(seals.length).toBeGreaterThan(1);
    let next = 0;
    for (const { row_count } of seals) {
      let covered = 0;
      while (covered < row_count && next < sizes.length) covered += sizes[next++]!;
      expect(covered).toBe(row_count);
      expect(row_count).toBeLessThanOrEqual(SEAL_CHUNK_ROWS + Math.max(...sizes));
    }
    expect(next).toBe(sizes.length);
  });

  it("never seals a row whose transaction is still open, and seals it once committed", async () => {
    const marker = randomUUID();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let written!: () => void;
    const inserted = new Promise<void>((r) => (written = r));
    const open = sdk.transaction(async () => {
      await sdk.audit.recordAuditEvent({ action: "doc.edited", target: { type: marker, id: "slow" } });
      written();
      await held;
    });
    await inserted;
    await writeEvents(null, 1, marker); // a later, committed row with a larger id
    await sdk.audit.seal();
    const [sealed] = await owner<{ slow: number; all: number }[]>`
      select (count(*) filter (where l.target_id = 'slow'))::int as slow, count(*)::int as all
        from audit.audit_seals s join audit.audit_logs l
          on l.txid >= s.from_txid and l.txid < s.to_txid and l.tenant_id is not distinct from s.tenant_id
       where l.target_type = ${marker}`;
    expect(sealed!.slow).toBe(0);
    // In one database the open transaction holds the horizon below both rows. With audit on a database
    // of its own both events travel through main's outbox: the open one is not there yet, and the
    // committed one may have arrived and been sealed.
    if (sdk.router.databaseOf("audit") === "main") expect(sealed!.all).toBe(0);
    release();
    await open;
    expect(await sealAll()).toMatchObject({ ok: true, unsealedRows: 0 });
  });

  it("lets concurrent sealers produce one consistent chain", async () => {
    const marker = randomUUID();
    const tenant = randomUUID();
    await Promise.all([writeEvents(tenant, 50, marker), writeEvents(tenant, 50, marker)]);
    const other = auditModule.create(createModuleContext(sdk.router, auditModule, silentLogger), {});
    const results = await Promise.all([sdk.audit.seal(), other.seal(), sdk.audit.seal()]);
    // Per database: several databases (a split topology) are sealed one after another, so one sealer
    // may hold one database's lock while another holds the next one's.
    for (const database of Object.keys(results[0]!.databases)) {
      expect(results.filter((r) => r.databases[database]?.locked).length, database).toBeGreaterThanOrEqual(1);
    }
    expect(await sealAll()).toMatchObject({ ok: true });
  });

  it("names a row altered by the owner", async () => {
    const marker = randomUUID();
    const tenant = randomUUID();
    await writeEvents(tenant, 4, marker);
    expect(await sealAll()).toMatchObject({ ok: true });
    const victim = await idOf(marker, "2");
    await asTamperingOwner((tx) => tx`update audit.audit_logs set action = 'doc.viewed' where id = ${victim}`);
    try {
      expect(await sdk.audit.verify()).toMatchObject({
        ok: false,
        firstBadRow: { id: victim, reason: "altered" },
        tenantId: tenant,
      });
    } finally {
      await asTamperingOwner((tx) => tx`update audit.audit_logs set action = 'doc.edited' where id = ${victim}`);
    }
    expect(await sdk.audit.verify()).toMatchObject({ ok: true });
  });

  it("names a row deleted by the owner, and a row slipped into sealed history", async () => {
    const marker = randomUUID();
    const tenant = randomUUID();
    await writeEvents(tenant, 3, marker);
    expect(await sealAll()).toMatchObject({ ok: true });
    const victim = await idOf(marker, "1");
    const saved = await snapshotRow("audit_logs", victim);
    await asTamperingOwner((tx) => tx`delete from audit.audit_logs where id = ${victim}`);
    try {
      expect(await sdk.audit.verify()).toMatchObject({ ok: false, firstBadRow: { id: victim, reason: "missing" } });
    } finally {
      await restoreRow("audit_logs", saved);
    }
    expect(await sdk.audit.verify()).toMatchObject({ ok: true });

    // A row forged with a transaction id inside the sealed range of this tenant.
    const [seal] = await owner<{ from_txid: string }[]>`
      select from_txid::text from audit.audit_seals where tenant_id = ${tenant} order by audit_seals.id limit 1`;
    const [forged] = await owner<{ id: string }[]>`
      insert into audit.audit_logs (tenant_id, actor_type, action, target_type, target_id, txid)
      values (${tenant}, 'system', 'doc.edited', ${marker}, 'forged', ${seal!.from_txid}) returning id::text`;
    try {
      expect(await sdk.audit.verify()).toMatchObject({
        ok: false,
        firstBadRow: { id: forged!.id, reason: "reordered" },
      });
    } finally {
      await asTamperingOwner((tx) => tx`delete from audit.audit_logs where id = ${forged!.id}`);
    }
    expect(await sdk.audit.verify()).toMatchObject({ ok: true });
  });

  it("names a missing seal", async () => {
    const marker = randomUUID();
    const tenant = randomUUID();
    await writeEvents(tenant, 2, marker);
    await sealAll();
    await writeEvents(tenant, 2, marker);
    await sealAll();
    const [first] = await owner<
      { id: string }[]
    >`select id::text from audit.audit_seals where tenant_id = ${tenant} order by audit_seals.id limit 1`;
    const saved = await snapshotRow("audit_seals", first!.id);
    await owner.begin(async (tx) => {
      await tx`alter table audit.audit_seals disable trigger audit_seals_append_only`;
      await tx`delete from audit.audit_seals where id = ${first!.id}`;
      await tx`alter table audit.audit_seals enable trigger audit_seals_append_only`;
    });
    try {
      expect(await sdk.audit.verify()).toMatchObject({
        ok: false,
        tenantId: tenant,
        firstBadRow: { reason: "missing" },
      });
    } finally {
      await restoreRow("audit_seals", saved);
    }
    expect(await sdk.audit.verify()).toMatchObject({ ok: true });
  });

  it("runs a background sealer until stopped (stop is idempotent)", async () => {
    const marker = randomUUID();
    await writeEvents(null, 3, marker);
    sdk.audit.startSealer({ intervalMs: 50 });
    sdk.audit.startSealer({ intervalMs: 50 });
    let result = await sdk.audit.verify();
    for (let i = 0; i < 100 && (!result.ok || result.unsealedRows > 0); i++) {
      await new Promise((r) => setTimeout(r, 100));
      result = await sdk.audit.verify();
    }
    await sdk.audit.stop();
    await sdk.audit.stop();
    expect(result).toMatchObject({ ok: true, unsealedRows: 0 });
  });
});

describe("retention", () => {
  it("refuses the runtime role", async () => {
    await expect(sdk.audit.applyRetention()).rejects.toMatchObject({ code: "RETENTION_ROLE_REQUIRED" });
  });

  it("drops only whole months past the policy, audits itself, and verify excuses what left", async () => {
    const marker = randomUUID();
    // Two old months as partitions, plus rows in the default partition (before partitions existed).
    await owner`create table audit.audit_logs_y2020m01 partition of audit.audit_logs for values from ('2020-01-01 00:00+00') to ('2020-02-01 00:00+00')`;
    await owner`create table audit.audit_logs_y2020m02 partition of audit.audit_logs for values from ('2020-02-01 00:00+00') to ('2020-03-01 00:00+00')`;
    for (const at of ["2020-01-15 00:00+00", "2020-02-20 00:00+00", "2019-06-01 00:00+00"]) {
      await owner`insert into audit.audit_logs (occurred_at, actor_type, action, target_type, target_id) values (${at}, 'system', 'doc.edited', ${marker}, ${at})`;
    }
    expect(await sealAll()).toMatchObject({ ok: true });

    const maintenance = auditModule.create(
      createModuleContext(createCoreRouter(db.topology, { asOwner: true }), auditModule, silentLogger),
      {},
    );
    // Policy cutoff 2020-02-10: January is entirely older, February straddles the cutoff.
    const result = await maintenance.applyRetention({ retentionDays: 10, now: new Date("2020-02-20T00:00:00Z") });
    expect(result.dropped.map((d) => d.partition)).toEqual(["audit_logs_y2020m01"]);
    const left = await owner<
      { target_id: string }[]
    >`select target_id from audit.audit_logs where target_type = ${marker} order by target_id`;
    expect(left.map((r) => r.target_id)).toEqual(["2019-06-01 00:00+00", "2020-02-20 00:00+00"]);
    const [event] = await owner<{ metadata: { droppedBefore: string; partitions: unknown[] }; actor_type: string }[]>`
      select metadata, actor_type from audit.audit_logs where action = 'audit.retention_applied' order by id desc limit 1`;
    expect(event!.metadata.droppedBefore).toBe("2020-02-01T00:00:00.000Z");
    expect(event!.metadata.partitions).toHaveLength(1);
    expect(await sealAll()).toMatchObject({ ok: true, retiredRows: 1 });
  });

  it("runs as a member of sv_maintenance, which still cannot delete rows", async () => {
    const role = `maint_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
    // Retention visits every database of the topology (each may hold audit rows): the maintenance
    // login is made on each one's server and is what the router logs in with there.
    const names = Object.keys(db.topology.databases);
    for (const name of names) {
      await db.ownerSqlOf(name).unsafe(`create role ${role} login password 'maint' in role sv_maintenance`);
    }
    const asMaintenance = (url: string) => {
      const login = new URL(url);
      login.username = role;
      login.password = "maint";
      return login.toString();
    };
    try {
      const databases = Object.fromEntries(
        Object.entries(db.topology.databases).map(([name, config]) => [
          name,
          { ...config, appUrl: asMaintenance(config.url) },
        ]),
      );
      const router = createCoreRouter(parseTopology({ ...db.topology, databases }));
      const maintenance = auditModule.create(createModuleContext(router, auditModule, silentLogger), {});
      try {
        const result = await maintenance.applyRetention({ retentionDays: 400 });
        expect(result.retentionDays).toBe(400);
        const [who] = await router.pool(auditDatabase).sql<{ u: string }[]>`select current_user as u`;
        expect(who!.u).toBe(role);
        await expect(router.pool(auditDatabase).sql`delete from audit.audit_logs where false`).rejects.toMatchObject({
          code: "42501",
        });
      } finally {
        await router.close();
      }
    } finally {
      for (const name of names) {
        await db
          .ownerSqlOf(name)
          .unsafe(`drop owned by ${role}`)
          .catch(() => undefined);
        await db.ownerSqlOf(name).unsafe(`drop role ${role}`);
      }
    }
  });

  it("keeps monthly partitions ahead through the runtime role", async () => {
    const created = await sdk.audit.ensurePartitions(5);
    const again = await sdk.audit.ensurePartitions(5);
    expect(again).toEqual([]);
    const [row] = await owner<{ n: number }[]>`
      select count(*)::int as n from pg_inherits where inhparent = 'audit.audit_logs'::regclass`;
    expect(row!.n).toBeGreaterThanOrEqual(7); // default + this month + 5 ahead
    const places = databasesOf(sdk, "audit");
    expect(created.every((c) => places.includes(c.database) && /^audit_logs_y\d{4}m\d{2}$/.test(c.partition))).toBe(
      true,
    );
  });
});
