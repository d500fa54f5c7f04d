import { randomUUID } from "node:crypto";
import { eq, sql } from "drizzle-orm";
import type postgres from "postgres";
import { describe, expect, it } from "vitest";
import { outboxSettled, useTestSdk } from "../../test/support.js";
import { withRollback } from "../testing/rollback.js";
import { markRollbackOnly, onRollback } from "./unit-of-work.js";
import { auditLogs } from "../modules/audit/index.js";
import { users } from "../modules/auth/index.js";
import { emailSends } from "../modules/email/index.js";
import { roles, userRoles } from "../modules/permissions/index.js";

const { sdk, app, owner, ownerSqlFor } = useTestSdk();
// The audit trail's own database: main, or audit_db when SV_TOPOLOGY=audit-split.
const auditOwner = ownerSqlFor("audit");

// Test-only mutating routes (Hono freezes its router on the first request, so they are added first).
app.post("/api/test-only/events/:id", async (c) => {
  await sdk.audit.recordAuditEvent({ action: "test.written", target: { type: "test", id: c.req.param("id") } });
  return c.json({ ok: true }, 201);
});
app.post("/api/test-only/fails/:id", async (c) => {
  await sdk.audit.recordAuditEvent({ action: "test.written", target: { type: "test", id: c.req.param("id") } });
  return c.json({ error: "refused after writing" }, 422);
});

const newUser = () => ({ id: randomUUID(), name: "Test User", email: `${randomUUID()}@example.test` });

/** Counts rows as the owner, past row-level security. */
async function ownerCount(query: postgres.PendingQuery<{ n: number }[]>) {
  const [row] = await query;
  return row!.n;
}

describe("unit of work", () => {
  it("commits writes to all four schemas together", async () => {
    const user = newUser();
    await sdk.transaction(async () => {
      await sdk.router.db("auth").insert(users).values(user);
      await sdk.audit.recordAuditEvent({ action: "user.created", target: { type: "user", id: user.id } });
    });
    expect(await ownerCount(owner`select count(*)::int as n from auth.users where id = ${user.id}`)).toBe(1);
    expect(
      await ownerCount(auditOwner`select count(*)::int as n from audit.audit_logs where target_id = ${user.id}`),
    ).toBe(1);
  });

  it("leaves no row in any schema when it fails midway", async () => {
    const user = newUser();
    const roleName = `role-${randomUUID()}`;
    const failure = new Error("the fourth step fails");
    await expect(
      sdk.transaction(async () => {
        await sdk.router.db("auth").insert(users).values(user);
        const [role] = await sdk.router.db("permissions").insert(roles).values({ name: roleName }).returning();
        await sdk.router.db("permissions").insert(userRoles).values({ userId: user.id, roleId: role!.id });
        await sdk.audit.recordAuditEvent({ action: "user.created", target: { type: "user", id: user.id } });
        await sdk.router.db("email").insert(emailSends).values({
          userId: user.id,
          toAddress: user.email,
          templateKey: "verify-email",
          category: "account",
          subject: "s",
          html: "h",
          text: "t",
        });
        throw failure;
      }),
    ).rejects.toBe(failure);

    expect(await ownerCount(owner`select count(*)::int as n from auth.users where id = ${user.id}`)).toBe(0);
    expect(await ownerCount(owner`select count(*)::int as n from permissions.roles where name = ${roleName}`)).toBe(0);
    expect(
      await ownerCount(owner`select count(*)::int as n from permissions.user_roles where user_id = ${user.id}`),
    ).toBe(0);
    expect(
      await ownerCount(auditOwner`select count(*)::int as n from audit.audit_logs where target_id = ${user.id}`),
    ).toBe(0);
    expect(await ownerCount(owner`select count(*)::int as n from email.email_sends where user_id = ${user.id}`)).toBe(
      0,
    );
  });

  it("rolls back only the savepoint of a failing nested transaction", async () => {
    const kept = newUser();
    const lost = newUser();
    await withRollback(sdk, async () => {
      await sdk.router.db("auth").insert(users).values(kept);
      await expect(
        sdk.transaction(async () => {
          await sdk.router.db("auth").insert(users).values(lost);
          throw new Error("nested failure");
        }),
      ).rejects.toThrow("nested failure");
      const found = await sdk.router.db("auth").select({ id: users.id }).from(users).where(eq(users.id, kept.id));
      const gone = await sdk.router.db("auth").select({ id: users.id }).from(users).where(eq(users.id, lost.id));
      expect(found).toHaveLength(1);
      expect(gone).toHaveLength(0);
    });
  });

  it("carries the request context into audit rows", async () => {
    const target = randomUUID();
    await withRollback(sdk, async () => {
      await sdk.withContext({ requestId: "req-42", actor: { type: "service", id: "billing" }, ip: "10.0.0.1" }, () =>
        sdk.audit.recordAuditEvent({ action: "invoice.paid", target: { type: "invoice", id: target } }),
      );
      const [row] = await sdk.router.db("audit").select().from(auditLogs).where(eq(auditLogs.targetId, target));
      expect(row).toMatchObject({ requestId: "req-42", actorType: "service", actorId: "billing", ip: "10.0.0.1" });
    });
  });
});

describe("rollback fixture", () => {
  it("rolls back rows written directly and over HTTP", async () => {
    const direct = newUser();
    const overHttp = randomUUID();
    await withRollback(sdk, async () => {
      await sdk.router.db("auth").insert(users).values(direct);
      const res = await app.request(`/api/test-only/events/${overHttp}`, { method: "POST" });
      expect(res.status).toBe(201);
      // Visible inside the fixture's transaction...
      const inside = await sdk.router.db("audit").select().from(auditLogs).where(eq(auditLogs.targetId, overHttp));
      expect(inside).toHaveLength(1);
    });
    // ...and gone after it.
    expect(await ownerCount(owner`select count(*)::int as n from auth.users where id = ${direct.id}`)).toBe(0);
    expect(
      await ownerCount(auditOwner`select count(*)::int as n from audit.audit_logs where target_id = ${overHttp}`),
    ).toBe(0);
  });

  it("rolls back a mutating request that answers with an error", async () => {
    const target = randomUUID();
    const res = await app.request(`/api/test-only/fails/${target}`, { method: "POST" });
    expect(res.status).toBe(422);
    expect(
      await ownerCount(auditOwner`select count(*)::int as n from audit.audit_logs where target_id = ${target}`),
    ).toBe(0);
  });
});

describe("database guarantees", () => {
  it("rejects an orphan through a cross-schema foreign key", async () => {
    await withRollback(sdk, async () => {
      const [role] = await sdk.router.db("permissions").select({ id: roles.id }).from(roles).limit(1);
      await expect(
        sdk.transaction(() =>
          sdk.router.db("permissions").insert(userRoles).values({ userId: randomUUID(), roleId: role!.id }),
        ),
      ).rejects.toMatchObject({ cause: { code: "23503", constraint_name: "user_roles_user_fk" } });
    });
  });

  it("runs the server's queries as sv_app, which cannot DROP or ALTER", async () => {
    const db = sdk.router.db("auth");
    const [who] = await db.execute<{ current_user: string }>(sql`select current_user`);
    expect(who!.current_user).toBe("sv_app");
    await expect(db.execute(sql`drop table auth.users`)).rejects.toMatchObject({ cause: { code: "42501" } });
    await expect(db.execute(sql`alter table auth.users add column pwned text`)).rejects.toMatchObject({
      cause: { code: "42501" },
    });
    await expect(db.execute(sql`create table public.pwned (id int)`)).rejects.toMatchObject({
      cause: { code: "42501" },
    });
  });
});

describe("rollback-only and after-rollback work", () => {
  it("rolls back a unit marked rollback-only even though its function resolved", async () => {
    const user = newUser();
    const swallowed = new Error("a callback failed and its caller only logged it");
    await expect(
      sdk.transaction(async () => {
        await sdk.router.db("auth").insert(users).values(user);
        markRollbackOnly(swallowed);
        return "resolved anyway";
      }),
    ).rejects.toBe(swallowed);
    expect(await ownerCount(owner`select count(*)::int as n from auth.users where id = ${user.id}`)).toBe(0);
  });

  it("keeps work registered with onRollback after the unit rolls back", async () => {
    const refused = randomUUID();
    await expect(
      sdk.transaction(async () => {
        await sdk.audit.recordAuditEvent({ action: "test.rolled_back", target: { type: "test", id: refused } });
        await onRollback(() =>
          sdk.audit.recordAuditEvent({ action: "test.refusal_recorded", target: { type: "test", id: refused } }),
        );
        throw new Error("refused");
      }),
    ).rejects.toThrow("refused");
    // With audit on a database of its own the refusal travels through the outbox after its commit.
    await outboxSettled(sdk);
    const rows = await auditOwner<
      { action: string }[]
    >`select action from audit.audit_logs where target_id = ${refused}`;
    expect(rows.map((r) => r.action)).toEqual(["test.refusal_recorded"]);
  });

  it("runs after-rollback work of a savepoint inside the enclosing transaction", async () => {
    const refused = randomUUID();
    await withRollback(sdk, async () => {
      await expect(
        sdk.transaction(async () => {
          await onRollback(() =>
            sdk.audit.recordAuditEvent({ action: "test.refusal_recorded", target: { type: "test", id: refused } }),
          );
          throw new Error("refused");
        }),
      ).rejects.toThrow("refused");
      const inside = await sdk.router.db("audit").select().from(auditLogs).where(eq(auditLogs.targetId, refused));
      expect(inside).toHaveLength(1);
    });
    // The enclosing transaction (the fixture) rolled back, taking the recorded refusal with it.
    expect(
      await ownerCount(auditOwner`select count(*)::int as n from audit.audit_logs where target_id = ${refused}`),
    ).toBe(0);
  });
});

describe("tenant scope of nested units", () => {
  const tenantSetting = async () => {
    const [row] = await sdk.router
      .db("audit")
      .execute<{ t: string | null }>(sql`select current_setting('sv.tenant_id', true) as t`);
    return row!.t || null;
  };

  it("applies a savepoint's tenant inside an open transaction and hands the parent's back after", async () => {
    const tenant = randomUUID();
    await withRollback(sdk, async () => {
      expect(await tenantSetting()).toBeNull();
      await sdk.withContext({ tenantId: tenant }, () =>
        sdk.transaction(async () => {
          expect(await tenantSetting()).toBe(tenant);
        }),
      );
      expect(await tenantSetting()).toBeNull();
      await sdk.withTenant("*", async () => expect(await tenantSetting()).toBe("*"));
      expect(await tenantSetting()).toBeNull();
    });
  });
});
