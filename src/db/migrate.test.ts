import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { describe, expect, inject, it } from "vitest";
import { createIsolatedDatabase } from "../testing/database.js";
import { migrateDatabase } from "./migrate.js";
import { appliedMigrationCount, shippedMigrationCount } from "./migration-count.js";

/** An empty database (not cloned from the migrated template) on the test server; dropped by `drop`. */
async function emptyDatabase() {
  const { adminUrl } = inject("svTestDatabase");
  const name = `sv_empty_${randomBytes(6).toString("hex")}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database "${name}"`);
  } finally {
    await admin.end({ timeout: 5 });
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
      try {
        await sql.unsafe(`drop database if exists "${name}" with (force)`);
      } finally {
        await sql.end({ timeout: 5 });
      }
    },
  };
}

async function withSql<T>(url: string, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

const OUR_SCHEMAS = ["auth", "email", "audit", "permissions", "drizzle"];

/** Everything a migration could change: schemas, columns, constraints, indexes, policies, triggers, grants. */
async function schemaSnapshot(sql: postgres.Sql) {
  const schemas = await sql<{ nspname: string }[]>`
    select nspname from pg_namespace where nspname = any(${OUR_SCHEMAS}) order by 1`;
  const columns = await sql`
    select table_schema, table_name, column_name, data_type, is_nullable, column_default, ordinal_position
    from information_schema.columns where table_schema = any(${OUR_SCHEMAS})
    order by table_schema, table_name, ordinal_position`;
  const constraints = await sql`
    select n.nspname, c.conrelid::regclass::text as rel, c.conname, pg_get_constraintdef(c.oid) as def
    from pg_constraint c join pg_namespace n on n.oid = c.connamespace
    where n.nspname = any(${OUR_SCHEMAS}) order by 1, 2, 3`;
  const indexes = await sql`
    select schemaname, tablename, indexname, indexdef from pg_indexes
    where schemaname = any(${OUR_SCHEMAS}) order by 1, 2, 3`;
  const policies = await sql`
    select schemaname, tablename, policyname, roles::text, cmd, qual, with_check from pg_policies
    where schemaname = any(${OUR_SCHEMAS}) order by 1, 2, 3`;
  const triggers = await sql`
    select t.tgrelid::regclass::text as rel, t.tgname, pg_get_triggerdef(t.oid) as def
    from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
    where not t.tgisinternal and n.nspname = any(${OUR_SCHEMAS}) order by 1, 2`;
  const grants = await sql`
    select grantee, table_schema, table_name, privilege_type from information_schema.role_table_grants
    where table_schema = any(${OUR_SCHEMAS}) and grantee like 'sv\\_%' order by 1, 2, 3, 4`;
  const rls = await sql`
    select n.nspname, c.relname, c.relrowsecurity from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = any(${OUR_SCHEMAS}) and c.relkind in ('r', 'p') order by 1, 2`;
  const migrations = await sql`select id, hash, created_at from drizzle.__drizzle_migrations order by id`;
  const plain = <T extends object>(rows: readonly T[]) => rows.map((r) => ({ ...r }));
  return {
    schemas: plain(schemas),
    columns: plain(columns),
    constraints: plain(constraints),
    indexes: plain(indexes),
    policies: plain(policies),
    triggers: plain(triggers),
    grants: plain(grants),
    rls: plain(rls),
    migrations: plain(migrations),
  };
}

describe("migrateDatabase", () => {
  it("applies every shipped migration to an empty database, and a second run changes nothing", async () => {
    const db = await emptyDatabase();
    try {
      const total = shippedMigrationCount();
      expect(total).toBeGreaterThan(0);

      const first = await migrateDatabase("main", db.url);
      expect(first).toEqual({ database: "main", appliedBefore: 0, appliedNow: total, total });
      const before = await withSql(db.url, schemaSnapshot);
      expect(before.schemas.map((s) => s.nspname)).toEqual(["audit", "auth", "drizzle", "email", "permissions"]);
      expect(before.policies.length).toBeGreaterThan(0);
      expect(before.grants.length).toBeGreaterThan(0);

      const second = await migrateDatabase("main", db.url);
      expect(second).toEqual({ database: "main", appliedBefore: total, appliedNow: total, total });
      expect(await withSql(db.url, schemaSnapshot)).toEqual(before);
    } finally {
      await db.drop();
    }
  });

  it("lets two processes migrate one empty database at once: both succeed, applied once", async () => {
    const db = await emptyDatabase();
    try {
      const total = shippedMigrationCount();
      const reports = await Promise.all([migrateDatabase("main", db.url), migrateDatabase("main", db.url)]);
      expect(reports.every((r) => r.appliedNow === total && r.total === total)).toBe(true);
      // The advisory lock serialises them: one applied everything, the other found it done.
      expect(reports.map((r) => r.appliedBefore).sort()).toEqual([0, total]);
      expect(await withSql(db.url, appliedMigrationCount)).toBe(total);
    } finally {
      await db.drop();
    }
  });

  it("reports 0 applied on a database that was never migrated", async () => {
    const db = await emptyDatabase();
    try {
      expect(await withSql(db.url, appliedMigrationCount)).toBe(0);
    } finally {
      await db.drop();
    }
  });
});

describe("the runtime login (appUrl)", () => {
  const loginUrl = (base: string, user: string, password: string) => {
    const url = new URL(base);
    url.username = user;
    url.password = password;
    return url.toString();
  };

  it("creates a login of its own, a member of sv_app only; a new password in the URL replaces the old one", async () => {
    const db = await createIsolatedDatabase(inject("svTestDatabase"));
    const name = `sv_app_rt_${randomBytes(4).toString("hex")}`;
    try {
      const first = loginUrl(db.url, name, "first password");
      await migrateDatabase("main", db.url, { appUrl: first });
      const member = await withSql(
        first,
        (sql) => sql<{ rolname: string }[]>`
        select rolname from pg_roles where pg_has_role(session_user, oid, 'MEMBER') order by 1`,
      );
      expect(member.map((r) => r.rolname)).toEqual([name, "sv_app"].sort());
      expect(await withSql(first, (sql) => sql`select 1 from auth.users limit 1`)).toBeDefined();

      const second = loginUrl(db.url, name, "second password");
      await migrateDatabase("main", db.url, { appUrl: second });
      const [who] = await withSql(second, (sql) => sql<{ u: string }[]>`select session_user as u`);
      expect(who!.u).toBe(name);
      await expect(withSql(first, (sql) => sql`select 1`)).rejects.toMatchObject({ code: "28P01" });
    } finally {
      await withSql(db.url, (sql) => sql.unsafe(`drop role if exists ${name}`));
      await db.drop();
    }
  });

  it("refuses a URL naming the owner — working password or not — and leaves the owner as it was", async () => {
    const db = await createIsolatedDatabase(inject("svTestDatabase"));
    try {
      const owner = new URL(db.url);
      await expect(migrateDatabase("main", db.url, { appUrl: db.url })).rejects.toThrow(
        new RegExp(
          `logs in as ${owner.username} \\(superuser.*owner of the database.*the runtime must log in as a role that can neither become the owner`,
        ),
      );
      const wrong = loginUrl(db.url, decodeURIComponent(owner.username), "not the owner's password");
      await expect(migrateDatabase("main", db.url, { appUrl: wrong })).rejects.toThrow(
        /the runtime must log in as a role that can neither become the owner/,
      );
      // Its password was not touched: the owner still logs in with its own.
      expect(await withSql(db.url, (sql) => sql`select 1 as one`)).toEqual([{ one: 1 }]);
    } finally {
      await db.drop();
    }
  });
});
