/**
 * Offline tenant moves (`--offline`: the batch copy, writes refused throughout) between two real
 * databases cloned from the migrated template: the tenant's rows arrive with equal counts and checksums,
 * platform rows have the same ids in independently seeded databases (drizzle/0018), the placement
 * flips, the source rows leave the live tables for the retained copy, the audit trail moves with them
 * (re-sealed on the target by the audit module's hook), and a crashed move resumes to the same end. Online moves: tenant-move-online.test.ts.
 */
import { coreCatalog } from "../core-modules.js";
import { randomUUID } from "node:crypto";
import type postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cheapHashingTestSdkOptions, useTwoDatabases } from "../../test/support.js";
import { createSdk, type Sdk } from "../index.js";
import { moveTenant, TenantMoveError, type MoveTenantOptions } from "./tenant-move.js";
import type { Topology } from "./topology.js";

/** Tables with a tenant_id, and how to find a tenant's rows in those without one. */
const TENANT_ROWS: Record<string, string> = {
  "permissions.roles": "tenant_id = $1",
  "permissions.user_roles": "tenant_id = $1",
  "permissions.role_permissions": "role_id in (select id from permissions.roles where tenant_id = $1)",
  "permissions.role_inheritance": "role_id in (select id from permissions.roles where tenant_id = $1)",
  "email.email_templates": "tenant_id = $1",
  "email.email_sends": "tenant_id = $1",
};
const TRAIL = "select count(*)::int as n from audit.audit_logs where tenant_id = $1";
/** A cache (declared `derived`): not copied — the target computes it afresh — and removed from the source. */
const CACHE = "select count(*)::int as n from permissions.permission_cache where tenant_id = $1";
/** Rows whose every column is copied as is (no platform role ids in them). */
const UNCHANGED = ["permissions.roles", "permissions.role_permissions", "email.email_templates", "email.email_sends"];

// TimeZone UTC, like the move's own connections: row texts (and checksums) compare equal.
const databases = useTwoDatabases({ TimeZone: "UTC" });
let sourceSql: postgres.Sql;
let targetSql: postgres.Sql;
let topology: Topology;
let sdk: Sdk;
const users: string[] = [];

async function snapshot(sql: postgres.Sql, tenantId: string) {
  const result: Record<string, { rows: number; checksum: string }> = {};
  for (const [table, where] of Object.entries(TENANT_ROWS)) {
    const [row] = await sql.unsafe<{ rows: number; checksum: string }[]>(
      `select count(*)::int as rows, coalesce(md5(string_agg(h, '' order by h)), '') as checksum
         from (select md5(to_jsonb(t)::text) as h from ${table} t where ${where}) q`,
      [tenantId],
    );
    result[table] = row!;
  }
  return result;
}

/** A tenant with roles (one inheriting a platform role), assignments, a cached check, a template, mail and audit events. */
async function populateTenant(name: string) {
  const tenantId = randomUUID();
  await sourceSql`insert into auth.organizations (id, name, slug) values (${tenantId}, ${name}, ${`${name}-${tenantId}`})`;
  const scope = { tenant: tenantId };
  await sdk.withContext({ actor: { type: "system", id: "test" } }, async () => {
    await sdk.permissions.createRole(
      { name: "editor", permissions: ["docs:write", "docs:read"], inherits: ["member"] },
      scope,
    );
    await sdk.permissions.createRole({ name: "viewer", permissions: ["docs:read"] }, scope);
    await sdk.permissions.assignRole(users[0]!, "editor", scope);
    await sdk.permissions.assignRole(users[1]!, "admin", scope);
    await sdk.permissions.assignRole(users[1]!, "viewer", scope);
    expect(await sdk.permissions.can(users[0]!, "docs:write", scope)).toBe(true);
    await sdk.email.createTemplate({
      tenantId,
      input: { key: "welcome", subject: "Hi {{name}}", html: "<p>{{name}}</p>", text: "{{name}}" },
    });
    for (let i = 0; i < 3; i++)
      await sdk.email.enqueueEmail({
        tenantId,
        to: `m${i}@example.test`,
        template: "welcome",
        data: { name: `M${i}` },
      });
    await sdk.transaction(() =>
      sdk.audit.recordAuditEvents(
        Array.from({ length: 7 }, (_, i) => ({
          action: "doc.created",
          tenantId,
          target: { type: "doc", id: String(i) },
        })),
      ),
    );
  });
  return tenantId;
}

const move = (options: Omit<MoveTenantOptions, "topology" | "catalog">) =>
  moveTenant({ topology, catalog: coreCatalog(), offline: true, ...options });

beforeAll(async () => {
  ({ mainSql: sourceSql, tenantSql: targetSql, topology } = databases);
  // A database seeded on its own gives its platform roles the same ids (drizzle/0018): nothing to translate.
  const platformIds = (sql: postgres.Sql) =>
    sql`select name, id from permissions.roles where tenant_id is null and built_in order by name`;
  const before = await platformIds(sourceSql);
  await targetSql`delete from permissions.roles where tenant_id is null`;
  const seeder = createSdk(cheapHashingTestSdkOptions(databases.tenantDb));
  await seeder.seed();
  await seeder.close();
  expect(before.length).toBeGreaterThan(0);
  expect(await platformIds(targetSql)).toEqual(before);
  sdk = createSdk(cheapHashingTestSdkOptions(databases.main));
  for (const name of ["ada", "bob"]) {
    users.push(
      (
        await sdk.auth.createUser({
          email: `${name}-${randomUUID()}@example.test`,
          password: "correct horse battery",
          name,
        })
      ).id,
    );
  }
}, 60_000);

afterAll(async () => {
  await sdk?.close();
});

describe("moveTenant", () => {
  it("copies, verifies, flips the placement and keeps the source rows out of the live tables (and the audit trail)", async () => {
    const tenantId = await populateTenant("acme");
    const before = await snapshot(sourceSql, tenantId);
    for (const table of Object.keys(TENANT_ROWS)) expect(before[table]!.rows, table).toBeGreaterThan(0);
    const [trail] = await sourceSql.unsafe<{ n: number }[]>(TRAIL, [tenantId]);
    expect(trail!.n).toBeGreaterThan(0);
    expect((await sourceSql.unsafe<{ n: number }[]>(CACHE, [tenantId]))[0]!.n).toBeGreaterThan(0);
    // Child rows carry their parent's tenant_id (drizzle/0018's triggers): a publication can filter them.
    const [children] = await sourceSql<{ n: number }[]>`
      select count(*)::int as n from permissions.role_permissions where tenant_id = ${tenantId}`;
    expect(children!.n).toBe(before["permissions.role_permissions"]!.rows);

    const progress: number[] = [];
    const result = await move({
      tenantId,
      to: "tenant_db",
      batchSize: 2,
      onProgress: (p) => p.phase === "copy" && progress.push(p.done),
    });

    expect(result).toMatchObject({
      from: "main",
      to: "tenant_db",
      mode: "offline",
      alreadyThere: false,
      resumed: false,
    });
    const total = Object.values(before).reduce((n, t) => n + t.rows, 0);
    expect(result.rowsCopied).toBe(total);
    expect(progress.at(-1)).toBe(total);
    const after = await snapshot(targetSql, tenantId);
    for (const table of Object.keys(TENANT_ROWS)) {
      expect(after[table]!.rows, table).toBe(before[table]!.rows);
      expect(result.tables.find((t) => t.table === table)?.rows, table).toBe(before[table]!.rows);
    }
    for (const table of UNCHANGED) expect(after[table]!.checksum, table).toBe(before[table]!.checksum);

    // Platform roles are the target's own rows (the same ids).
    const [admin] = await targetSql<{ same: boolean }[]>`
      select bool_or(ur.role_id = r.id) as same from permissions.user_roles ur, permissions.roles r
       where ur.tenant_id = ${tenantId} and ur.user_id = ${users[1]!} and r.tenant_id is null and r.name = 'admin'`;
    expect(admin?.same).toBe(true);
    const onTarget = createSdk(cheapHashingTestSdkOptions(databases.tenantDb));
    try {
      expect(await onTarget.permissions.can(users[1]!, "roles:write", { tenant: tenantId })).toBe(true);
      expect(await onTarget.permissions.can(users[0]!, "docs:write", { tenant: tenantId })).toBe(true);
      expect(await onTarget.permissions.can(users[0]!, "permissions:read:self", { tenant: tenantId })).toBe(true);
      expect(await onTarget.permissions.can(users[1]!, "docs:write", { tenant: tenantId })).toBe(false);
    } finally {
      await onTarget.close();
    }

    const [placement] =
      await sourceSql`select database, state from platform.tenant_placements where tenant_id = ${tenantId}`;
    expect(placement).toEqual({ database: "tenant_db", state: "active" });
    const [record] =
      await sourceSql`select source, target, phase from platform.tenant_moves where tenant_id = ${tenantId}`;
    expect(record).toEqual({ source: "main", target: "tenant_db", phase: "done" });

    const left = await snapshot(sourceSql, tenantId);
    for (const table of Object.keys(TENANT_ROWS)) expect(left[table]!.rows, table).toBe(0);
    // Kept, out of the live tables, until --finalize.
    const [kept] = await sourceSql<{ n: number }[]>`
      select count(*)::int as n from platform.tenant_move_retained where tenant_id = ${tenantId} and table_name not like 'audit.%'`;
    expect(kept!.n).toBe(total);
    expect((await sourceSql.unsafe<{ n: number }[]>(CACHE, [tenantId]))[0]).toEqual({ n: 0 });
    expect(result.tables.some((t) => t.table === "permissions.permission_cache")).toBe(false);
    // The audit trail is not replicated (staysWhereWritten): the audit module's hook re-seals it on the
    // target at the switch and sets the source's rows aside with the rest (src/modules/audit/history-move.ts).
    expect(result.tables.some((t) => t.table.startsWith("audit."))).toBe(false);
    expect((await sourceSql.unsafe<{ n: number }[]>(TRAIL, [tenantId]))[0]).toEqual({ n: 0 });
    expect((await targetSql.unsafe<{ n: number }[]>(TRAIL, [tenantId]))[0]).toEqual(trail);
    const [keptTrail] = await sourceSql<{ n: number }[]>`
      select count(*)::int as n from platform.tenant_move_retained where tenant_id = ${tenantId} and table_name = 'audit.audit_logs'`;
    expect(keptTrail!.n).toBe(trail!.n);
    const [everything] = await sourceSql<{ n: number }[]>`
      select count(*)::int as n from platform.tenant_move_retained where tenant_id = ${tenantId}`;
    expect(result.rowsRetained).toBe(everything!.n);

    // Moving it again to where it is does nothing.
    expect(await move({ tenantId, to: "tenant_db" })).toMatchObject({ alreadyThere: true, rowsCopied: 0 });
  }, 120_000);

  it("resumes a move interrupted after its first table and ends in the same state", async () => {
    const tenantId = await populateTenant("globex");
    const before = await snapshot(sourceSql, tenantId);
    const tables: string[] = [];
    const crash = move({
      tenantId,
      to: "tenant_db",
      batchSize: 2,
      afterBatch: (table) => {
        if (!tables.includes(table)) tables.push(table);
        if (tables.length === 2) throw new Error("simulated crash");
      },
    });
    await expect(crash).rejects.toThrow("simulated crash");
    const [placement] =
      await sourceSql`select database, state from platform.tenant_placements where tenant_id = ${tenantId}`;
    expect(placement).toEqual({ database: "main", state: "moving" });

    const again = move({ tenantId, to: "tenant_db" });
    await expect(again).rejects.toBeInstanceOf(TenantMoveError);
    await expect(again).rejects.toMatchObject({ kind: "usage", message: expect.stringContaining("--resume") });
    await expect(move({ tenantId, to: "main", resume: true })).rejects.toMatchObject({ kind: "usage" });

    const resumed = await move({ tenantId, to: "tenant_db", batchSize: 2, resume: true });
    const total = Object.values(before).reduce((n, t) => n + t.rows, 0);
    expect(resumed.resumed).toBe(true);
    // The first table and the batch recorded of the second were not copied again.
    expect(resumed.rowsCopied).toBeLessThan(total);
    expect(resumed.rowsCopied).toBeGreaterThan(0);

    const after = await snapshot(targetSql, tenantId);
    for (const table of Object.keys(TENANT_ROWS)) expect(after[table]!.rows, table).toBe(before[table]!.rows);
    for (const table of UNCHANGED) expect(after[table]!.checksum, table).toBe(before[table]!.checksum);
    const [flipped] =
      await sourceSql`select database, state from platform.tenant_placements where tenant_id = ${tenantId}`;
    expect(flipped).toEqual({ database: "tenant_db", state: "active" });
    const [roles] = await sourceSql<
      { n: number }[]
    >`select count(*)::int as n from permissions.roles where tenant_id = ${tenantId}`;
    expect(roles!.n).toBe(0);
  }, 120_000);

  it("refuses an unknown target database and an unknown tenant", async () => {
    await expect(move({ tenantId: randomUUID(), to: "nowhere" })).rejects.toMatchObject({ kind: "usage" });
    await expect(move({ tenantId: randomUUID(), to: "tenant_db" })).rejects.toMatchObject({
      kind: "failure",
      message: expect.stringContaining("no tenant"),
    });
  });
});
