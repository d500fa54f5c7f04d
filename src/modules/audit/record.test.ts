import { randomUUID } from "node:crypto";
import { eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { useTestSdk } from "../../../test/support.js";
import { withRollback } from "../../testing/rollback.js";
import { users } from "../auth/index.js";
import { auditLogs } from "./index.js";
import { REDACTED, redact } from "../../redact.js";

const { sdk, owner, ownerSqlFor } = useTestSdk();
// The audit trail's own database: main, or audit_db when SV_TOPOLOGY=audit-split.
const auditOwner = ownerSqlFor("audit");
const audit = () => sdk.router.db("audit");

async function rowsFor(targetId: string) {
  return audit().select().from(auditLogs).where(eq(auditLogs.targetId, targetId));
}

describe("recordAuditEvent", () => {
  it("writes every field of the event and of the ambient context", async () => {
    const tenant = randomUUID();
    const target = randomUUID();
    await withRollback(sdk, () =>
      sdk.withTenant(tenant, () =>
        sdk.withContext(
          { requestId: "req-7", actor: { type: "user", id: "u-1" }, ip: "203.0.113.9", userAgent: "vitest" },
          async () => {
            await sdk.audit.recordAuditEvent({
              action: "invoice.paid",
              target: { type: "invoice", id: target },
              metadata: { amount: 42 },
              changes: { before: { status: "open" }, after: { status: "paid" } },
            });
            const [row] = await rowsFor(target);
            expect(row).toMatchObject({
              tenantId: tenant,
              actorType: "user",
              actorId: "u-1",
              action: "invoice.paid",
              targetType: "invoice",
              targetId: target,
              ip: "203.0.113.9",
              userAgent: "vitest",
              requestId: "req-7",
              metadata: { amount: 42 },
              changes: { before: { status: "open" }, after: { status: "paid" } },
            });
            expect(row!.occurredAt).toBeInstanceOf(Date);
            expect(row!.txid).toBeGreaterThan(0n);
          },
        ),
      ),
    );
  });

  it("defaults the actor to the system and records platform events outside a tenant", async () => {
    const target = randomUUID();
    await withRollback(sdk, async () => {
      await sdk.audit.recordAuditEvent({ action: "job.ran", target: { type: "job", id: target } });
      const [row] = await rowsFor(target);
      expect(row).toMatchObject({ actorType: "system", actorId: null, tenantId: null });
    });
  });

  it("writes an event naming another tenant than the ambient one under that tenant", async () => {
    const tenant = randomUUID();
    const target = randomUUID();
    await withRollback(sdk, async () => {
      await sdk.audit.recordAuditEvent({
        action: "tenant.suspended",
        tenantId: tenant,
        target: { type: "tenant", id: target },
      });
      const [row] = await auditOwner`select tenant_id from audit.audit_logs where target_id = ${target}`;
      // The owner connection cannot see the uncommitted row; the runtime role can, inside the tenant.
      expect(row).toBeUndefined();
      const inside = await sdk.withTenant(tenant, () => rowsFor(target));
      expect(inside).toHaveLength(1);
      expect(await rowsFor(target)).toHaveLength(0);
    });
  });

  it("redacts credential-like keys at any depth of metadata and changes", async () => {
    const target = randomUUID();
    await withRollback(sdk, async () => {
      await sdk.audit.recordAuditEvent({
        action: "user.updated",
        target: { type: "user", id: target },
        metadata: { headers: { Authorization: "Bearer x", Cookie: "s=1", accept: "json" }, list: [{ apiKey: "k" }] },
        changes: {
          before: { password: "old", profile: { name: "A" } },
          after: {
            password_hash: "h",
            nested: { refresh_token: "t", api_key: "k", "x-api-key": "k", clientSecret: "s" },
          },
        },
      });
      const [row] = await rowsFor(target);
      expect(row!.metadata).toEqual({
        headers: { Authorization: REDACTED, Cookie: REDACTED, accept: "json" },
        list: [{ apiKey: REDACTED }],
      });
      expect(row!.changes).toEqual({
        before: { password: REDACTED, profile: { name: "A" } },
        after: {
          password_hash: REDACTED,
          nested: { refresh_token: REDACTED, api_key: REDACTED, "x-api-key": REDACTED, clientSecret: REDACTED },
        },
      });
    });
  });

  it("redacts without mutating the input and survives shared and circular references", () => {
    const shared = { token: "t" };
    const input: Record<string, unknown> = { a: shared, b: shared };
    input.self = input;
    const out = redact(input);
    expect(out).toEqual({ a: { token: REDACTED }, b: { token: REDACTED }, self: "[Circular]" });
    expect(shared.token).toBe("t");
  });

  it("fails closed: an invalid event fails the change it records", async () => {
    const user = { id: randomUUID(), name: "A", email: `${randomUUID()}@example.test` };
    await expect(
      sdk.transaction(async () => {
        await sdk.router.db("auth").insert(users).values(user);
        await sdk.audit.recordAuditEvent({ action: "Not An Action" });
      }),
    ).rejects.toMatchObject({ code: "INVALID_AUDIT_EVENT" });
    const [found] = await owner`select count(*)::int as n from auth.users where id = ${user.id}`;
    expect(found!.n).toBe(0);
  });

  it("fails closed: a refused audit insert fails the change it records", async () => {
    const user = { id: randomUUID(), name: "A", email: `${randomUUID()}@example.test` };
    await expect(
      sdk.transaction(async () => {
        await sdk.router.db("auth").insert(users).values(user);
        // jsonb refuses an unpaired surrogate: the database fails the insert, so the change fails too.
        await sdk.audit.recordAuditEvent({ action: "user.created", metadata: { bad: "\ud800" } });
      }),
    ).rejects.toThrow();
    const [found] = await owner`select count(*)::int as n from auth.users where id = ${user.id}`;
    expect(found!.n).toBe(0);
  });

  it("rejects unknown actor types and non-uuid tenants", async () => {
    await expect(
      sdk.audit.recordAuditEvent({ action: "a.b", actor: { type: "robot" } as never }),
    ).rejects.toMatchObject({ code: "INVALID_AUDIT_EVENT" });
    await expect(sdk.audit.recordAuditEvent({ action: "a.b", tenantId: "acme" })).rejects.toMatchObject({
      code: "INVALID_AUDIT_EVENT",
    });
  });
});

describe("recordAuditEvents", () => {
  it("writes a batch in one unit, ambient and explicitly scoped events alike", async () => {
    const batch = randomUUID();
    const tenant = randomUUID();
    await withRollback(sdk, async () => {
      await sdk.audit.recordAuditEvents([
        ...Array.from({ length: 1500 }, (_, i) => ({
          action: "item.imported",
          target: { type: batch, id: String(i) },
        })),
        { action: "item.imported", tenantId: tenant, target: { type: batch, id: "tenant" } },
      ]);
      const [platform] = await audit().execute<{ n: number }>(
        sql`select count(*)::int as n from audit.audit_logs where target_type = ${batch}`,
      );
      expect(platform!.n).toBe(1500);
      const inTenant = await sdk.withTenant(tenant, () =>
        audit().select().from(auditLogs).where(eq(auditLogs.targetType, batch)),
      );
      expect(inTenant).toHaveLength(1);
    });
  });

  it("writes none of a batch when one event is invalid", async () => {
    const batch = randomUUID();
    await expect(
      sdk.audit.recordAuditEvents([
        { action: "item.imported", target: { type: batch, id: "1" } },
        { action: "bad", target: { type: batch, id: "2" } },
      ]),
    ).rejects.toMatchObject({ code: "INVALID_AUDIT_EVENT" });
    const [row] = await auditOwner`select count(*)::int as n from audit.audit_logs where target_type = ${batch}`;
    expect(row!.n).toBe(0);
  });
});

describe("immutability", () => {
  const refusedAsRuntime = (statement: ReturnType<typeof sql>) =>
    expect(sdk.transaction(() => audit().execute(statement))).rejects.toMatchObject({ cause: { code: "42501" } });

  it("refuses UPDATE, DELETE and TRUNCATE on audit tables to sv_app", async () => {
    const target = randomUUID();
    await withRollback(sdk, async () => {
      const [who] = await audit().execute<{ current_user: string }>(sql`select current_user`);
      expect(who!.current_user).toBe("sv_app");
      await sdk.audit.recordAuditEvent({ action: "doc.created", target: { type: "doc", id: target } });
      await refusedAsRuntime(sql`update audit.audit_logs set action = 'doc.deleted' where target_id = ${target}`);
      await refusedAsRuntime(sql`delete from audit.audit_logs where target_id = ${target}`);
      await refusedAsRuntime(sql`truncate audit.audit_logs`);
      await refusedAsRuntime(sql`update audit.audit_seals set seal_hash = 'x'`);
      await refusedAsRuntime(sql`delete from audit.audit_seals`);
      await refusedAsRuntime(sql`truncate audit.audit_seals`);
      expect(await rowsFor(target)).toHaveLength(1);
    });
  });

  it("refuses sv_app the columns that order the trail, and direct reads of partitions", async () => {
    await withRollback(sdk, async () => {
      await refusedAsRuntime(
        sql`insert into audit.audit_logs (actor_type, action, occurred_at) values ('system', 'x.y', now() - interval '1 year')`,
      );
      await refusedAsRuntime(sql`insert into audit.audit_logs (actor_type, action, txid) values ('system', 'x.y', 1)`);
      await refusedAsRuntime(
        sql`insert into audit.audit_logs (id, actor_type, action) overriding system value values (1, 'system', 'x.y')`,
      );
      await refusedAsRuntime(sql`select * from audit.audit_logs_default`);
      const [partition] = await auditOwner<{ name: string }[]>`
        select 'audit_logs_y' || to_char(now() at time zone 'UTC', 'YYYY"m"MM') as name`;
      await refusedAsRuntime(sql.raw(`select * from audit.${partition!.name}`));
    });
  });

  it("refuses UPDATE, DELETE and TRUNCATE even to the owner while the trigger is on", async () => {
    const target = randomUUID();
    await expect(
      auditOwner.begin(async (tx) => {
        await tx`insert into audit.audit_logs (actor_type, action, target_id) values ('system', 'doc.created', ${target})`;
        await tx`update audit.audit_logs set action = 'doc.deleted' where target_id = ${target}`;
      }),
    ).rejects.toMatchObject({ code: "42501" });
    await expect(
      auditOwner.begin(async (tx) => {
        await tx`insert into audit.audit_logs (actor_type, action, target_id) values ('system', 'doc.created', ${target})`;
        await tx`delete from audit.audit_logs where target_id = ${target}`;
      }),
    ).rejects.toMatchObject({ code: "42501" });
    await expect(auditOwner.begin((tx) => tx`truncate audit.audit_logs`)).rejects.toMatchObject({ code: "42501" });
  });

  it("stores rows in the monthly partition of their time", async () => {
    const target = randomUUID();
    await auditOwner
      .begin(async (tx) => {
        await tx`insert into audit.audit_logs (actor_type, action, target_id) values ('system', 'doc.created', ${target})`;
        const [row] = await tx<{ partition: string; expected: string }[]>`
        select tableoid::regclass::text as partition,
               'audit.audit_logs_y' || to_char(occurred_at at time zone 'UTC', 'YYYY"m"MM') as expected
        from audit.audit_logs where target_id = ${target}`;
        expect(row!.partition).toBe(row!.expected);
        throw new Error("rollback");
      })
      .catch((e: Error) => expect(e.message).toBe("rollback"));
  });
});
