import { randomUUID } from "node:crypto";
import type postgres from "postgres";
import { describe, expect, it } from "vitest";
import { useTestSdk } from "../../test/support.js";
import { coreCatalog } from "../core-modules.js";

/** The cross keys the modules declare, split into their ends. */
const CROSS_SCHEMA_KEYS = coreCatalog().crossKeys.map((key) => {
  const [fromSchema, fromTable, fromColumn] = key.from.split(".") as [string, string, string];
  const [toSchema, toTable, toColumn] = key.to.split(".") as [string, string, string];
  return {
    name: key.name,
    from: { schema: fromSchema, table: fromTable, column: fromColumn },
    to: { schema: toSchema, table: toTable, column: toColumn },
    onDelete: key.onDelete,
  };
});

const { owner } = useTestSdk();

class Rollback extends Error {}

/**
 * Runs `fn` in an owner transaction acting as `role` (SET LOCAL ROLE), always rolled back. Returns
 * what `fn` returned; an error from `fn` propagates.
 */
async function asRole<T>(role: string | null, fn: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
  let result: T | undefined;
  try {
    await owner.begin(async (tx) => {
      if (role) await tx.unsafe(`set local role ${role}`);
      result = await fn(tx);
      throw new Rollback();
    });
  } catch (error) {
    if (!(error instanceof Rollback)) throw error;
  }
  return result as T;
}

const denied = { code: "42501" };

describe("the four schemas", () => {
  it("exist", async () => {
    const rows = await owner<{ nspname: string }[]>`
      select nspname from pg_namespace where nspname in ('auth', 'email', 'audit', 'permissions') order by 1`;
    expect(rows.map((r) => r.nspname)).toEqual(["audit", "auth", "email", "permissions"]);
  });
});

describe("cross-schema foreign keys", () => {
  it.each(CROSS_SCHEMA_KEYS.map((k) => [k.name, k] as const))(
    "%s exists with the declared ON DELETE",
    async (_, key) => {
      const [row] = await owner<
        {
          from_schema: string;
          from_table: string;
          from_column: string;
          to_schema: string;
          to_table: string;
          to_column: string;
          on_delete: string;
        }[]
      >`
      select fn.nspname as from_schema, fc.relname as from_table, fa.attname as from_column,
             tn.nspname as to_schema, tc.relname as to_table, ta.attname as to_column,
             case c.confdeltype when 'c' then 'cascade' when 'n' then 'set null' when 'a' then 'no action'
                                when 'r' then 'restrict' when 'd' then 'set default' end as on_delete
      from pg_constraint c
      join pg_class fc on fc.oid = c.conrelid join pg_namespace fn on fn.oid = fc.relnamespace
      join pg_class tc on tc.oid = c.confrelid join pg_namespace tn on tn.oid = tc.relnamespace
      join pg_attribute fa on fa.attrelid = c.conrelid and fa.attnum = c.conkey[1]
      join pg_attribute ta on ta.attrelid = c.confrelid and ta.attnum = c.confkey[1]
      where c.contype = 'f' and c.conname = ${key.name} and fn.nspname = ${key.from.schema}`;
      expect(row).toEqual({
        from_schema: key.from.schema,
        from_table: key.from.table,
        from_column: key.from.column,
        to_schema: key.to.schema,
        to_table: key.to.table,
        to_column: key.to.column,
        on_delete: key.onDelete,
      });
    },
  );
});

describe("database roles", () => {
  it("sv_app, sv_readonly and sv_auditor exist; only sv_app logs in (migrating set up its login)", async () => {
    const rows = await owner<{ rolname: string; rolcanlogin: boolean; rolsuper: boolean }[]>`
      select rolname, rolcanlogin, rolsuper from pg_roles
      where rolname in ('sv_app', 'sv_readonly', 'sv_auditor') order by 1`;
    expect(rows.map((r) => ({ ...r }))).toEqual([
      { rolname: "sv_app", rolcanlogin: true, rolsuper: false },
      { rolname: "sv_auditor", rolcanlogin: false, rolsuper: false },
      { rolname: "sv_readonly", rolcanlogin: false, rolsuper: false },
    ]);
  });

  it("sv_readonly can SELECT every schema but not INSERT", async () => {
    const counts = await asRole("sv_readonly", async (tx) => {
      const [users] = await tx`select count(*)::int as n from auth.users`;
      const [roles] = await tx`select count(*)::int as n from permissions.roles`;
      const [logs] = await tx`select count(*)::int as n from audit.audit_logs`;
      const [sends] = await tx`select count(*)::int as n from email.email_sends`;
      return [users, roles, logs, sends].map((r) => typeof r!.n);
    });
    expect(counts).toEqual(["number", "number", "number", "number"]);
    await expect(
      asRole(
        "sv_readonly",
        (tx) => tx`insert into auth.users (name, email) values ('x', ${`${randomUUID()}@example.test`})`,
      ),
    ).rejects.toMatchObject(denied);
    await expect(
      asRole("sv_readonly", (tx) => tx`insert into permissions.roles (name) values (${randomUUID()})`),
    ).rejects.toMatchObject(denied);
  });

  it("sv_auditor can read audit but not auth", async () => {
    const [row] = await asRole("sv_auditor", (tx) => tx`select count(*)::int as n from audit.audit_logs`);
    expect(typeof row!.n).toBe("number");
    await expect(asRole("sv_auditor", (tx) => tx`select 1 from auth.users limit 1`)).rejects.toMatchObject(denied);
    await expect(asRole("sv_auditor", (tx) => tx`select 1 from permissions.roles limit 1`)).rejects.toMatchObject(
      denied,
    );
  });

  it("sv_app can INSERT audit rows but cannot UPDATE, DELETE or TRUNCATE them", async () => {
    const inserted = await asRole("sv_app", async (tx) => {
      await tx`select set_config('sv.tenant_id', '*', true)`;
      return tx`insert into audit.audit_logs (actor_type, action) values ('system', 'test.written') returning 1`;
    });
    expect(inserted).toHaveLength(1);
    await expect(asRole("sv_app", (tx) => tx`update audit.audit_logs set action = 'tampered'`)).rejects.toMatchObject(
      denied,
    );
    await expect(asRole("sv_app", (tx) => tx`delete from audit.audit_logs`)).rejects.toMatchObject(denied);
    await expect(asRole("sv_app", (tx) => tx`truncate audit.audit_logs`)).rejects.toMatchObject(denied);
    // Not even through the partition, which would skip the parent's row-level security.
    await expect(asRole("sv_app", (tx) => tx`select 1 from audit.audit_logs_default limit 1`)).rejects.toMatchObject(
      denied,
    );
  });

  it("even the owner cannot UPDATE or DELETE audit rows (append-only trigger)", async () => {
    await expect(
      asRole(null, async (tx) => {
        await tx`insert into audit.audit_logs (actor_type, action) values ('system', 'test.written')`;
        await tx`update audit.audit_logs set action = 'tampered' where action = 'test.written'`;
      }),
    ).rejects.toMatchObject(denied);
    await expect(
      asRole(null, async (tx) => {
        await tx`insert into audit.audit_logs (actor_type, action) values ('system', 'test.written')`;
        await tx`delete from audit.audit_logs where action = 'test.written'`;
      }),
    ).rejects.toMatchObject(denied);
  });
});

describe("row-level security", () => {
  it("hides another tenant's roles from sv_app", async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    const seen = await asRole(null, async (tx) => {
      for (const id of [a, b]) {
        await tx`insert into auth.organizations (id, name, slug) values (${id}, ${`org ${id}`}, ${`org-${id}`})`;
        await tx`insert into permissions.roles (tenant_id, name) values (${id}, ${`role-of-${id}`})`;
      }
      await tx`set local role sv_app`;
      const visible = async (tenant: string) => {
        await tx`select set_config('sv.tenant_id', ${tenant}, true)`;
        const rows = await tx<{ tenant_id: string }[]>`
          select tenant_id from permissions.roles where tenant_id in (${a}, ${b})`;
        return rows.map((r) => r.tenant_id).sort();
      };
      return {
        asA: await visible(a),
        asB: await visible(b),
        unscoped: await visible(""),
        platform: await visible("*"),
      };
    });
    expect(seen.asA).toEqual([a]);
    expect(seen.asB).toEqual([b]);
    expect(seen.unscoped).toEqual([]);
    expect(seen.platform).toEqual([a, b].sort());
  });

  it("applies to sv_app because it does not own the tables", async () => {
    const rows = await owner<{ tableowner: string }[]>`
      select distinct tableowner from pg_tables where schemaname in ('auth', 'email', 'audit', 'permissions')`;
    expect(rows.map((r) => r.tableowner)).not.toContain("sv_app");
  });
});
