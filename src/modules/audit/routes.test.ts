import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { outboxSettled, useTestSdk } from "../../../test/support.js";
import { createRoutes } from "../../http/routes.js";
import { errorToProblem } from "../../http/problem.js";
import { silentLogger } from "../../logger.js";
import { withRollback } from "../../testing/rollback.js";
import { organizations, users } from "../auth/index.js";
import { createAuditRoutes } from "./index.js";

const { sdk } = useTestSdk();

// The routes behind a stand-in for the session middleware: x-test-user / x-test-tenant set the user
// and tenant the way the auth middleware does; permissions are the real module's.
const app = createRoutes();
app.use(async (c, next) => {
  const userId = c.req.header("x-test-user");
  const tenantId = c.req.header("x-test-tenant");
  c.set("user", userId ? { id: userId, email: `${userId}@example.test`, name: "T", emailVerified: true } : null);
  c.set("tenant", tenantId ? { id: tenantId } : null);
  await next();
});
app.route("/api/v1/audit", createAuditRoutes({ audit: sdk.audit, permissions: sdk.permissions }));
app.onError((error, c) => errorToProblem(error, c, silentLogger));

async function newUser() {
  const id = randomUUID();
  await sdk.router
    .db("auth")
    .insert(users)
    .values({ id, name: "Reader", email: `${id}@example.test` });
  return id;
}

async function newTenant(id: string = randomUUID()) {
  await sdk.router
    .db("auth")
    .insert(organizations)
    .values({ id, name: `Org ${id}`, slug: `org-${id}` });
  return id;
}

const as = (user: string | null, tenant?: string | null): Record<string, string> => ({
  ...(user ? { "x-test-user": user } : {}),
  ...(tenant ? { "x-test-tenant": tenant } : {}),
});

async function get(path: string, headers: Record<string, string>) {
  return app.request(path, { headers });
}

interface Page {
  events: { id: string; action: string; tenantId: string | null; occurredAt: string; actor: { id: string } }[];
  nextCursor: string | null;
}

/** Three events in tenant `tenant`, one in `other`, one platform event, all with `marker` as target type. */
async function seedEvents(tenant: string, other: string, marker: string) {
  await sdk.withTenant(tenant, async () => {
    await sdk.withContext({ actor: { type: "user", id: "alice" } }, () =>
      sdk.audit.recordAuditEvent({ action: "role.created", target: { type: marker, id: "r1" } }),
    );
    await sdk.audit.recordAuditEvent({ action: "role.assigned", target: { type: marker, id: "r1" } });
    await sdk.audit.recordAuditEvent({ action: "member.invited", target: { type: marker, id: "m1" } });
  });
  await sdk.withTenant(other, () =>
    sdk.audit.recordAuditEvent({ action: "role.created", target: { type: marker, id: "secret" } }),
  );
  await sdk.withTenant(null, () =>
    sdk.audit.recordAuditEvent({ action: "platform.configured", target: { type: marker, id: "p" } }),
  );
}

describe("GET /api/v1/audit/events", () => {
  it("lists the tenant's events newest first, filtered, page by page", () =>
    withRollback(sdk, async () => {
      const [tenant, other, reader] = [await newTenant(), await newTenant(), await newUser()];
      await sdk.permissions.assignRole(reader, "auditor", { tenant });
      const marker = `m-${randomUUID()}`;
      await seedEvents(tenant, other, marker);

      const all = (await (await get(`/api/v1/audit/events?targetType=${marker}`, as(reader, tenant))).json()) as Page;
      expect(all.events.map((e) => e.action)).toEqual(["member.invited", "role.assigned", "role.created"]);
      expect(all.events.every((e) => e.tenantId === tenant)).toBe(true);
      expect(all.nextCursor).toBeNull();

      const roles = (await (
        await get(`/api/v1/audit/events?targetType=${marker}&action=role.`, as(reader, tenant))
      ).json()) as Page;
      expect(roles.events.map((e) => e.action)).toEqual(["role.assigned", "role.created"]);
      const byActor = (await (
        await get(`/api/v1/audit/events?targetType=${marker}&actorId=alice`, as(reader, tenant))
      ).json()) as Page;
      expect(byActor.events.map((e) => e.action)).toEqual(["role.created"]);
      const byTarget = (await (
        await get(`/api/v1/audit/events?targetType=${marker}&targetId=m1`, as(reader, tenant))
      ).json()) as Page;
      expect(byTarget.events.map((e) => e.action)).toEqual(["member.invited"]);
      const future = new Date(Date.now() + 3_600_000).toISOString();
      const none = (await (
        await get(`/api/v1/audit/events?targetType=${marker}&from=${future}`, as(reader, tenant))
      ).json()) as Page;
      expect(none.events).toEqual([]);
      const before = (await (
        await get(`/api/v1/audit/events?targetType=${marker}&to=${future}`, as(reader, tenant))
      ).json()) as Page;
      expect(before.events).toHaveLength(3);

      const first = (await (
        await get(`/api/v1/audit/events?targetType=${marker}&limit=2`, as(reader, tenant))
      ).json()) as Page;
      expect(first.events).toHaveLength(2);
      expect(first.nextCursor).toEqual(expect.any(String));
      const second = (await (
        await get(`/api/v1/audit/events?targetType=${marker}&limit=2&cursor=${first.nextCursor}`, as(reader, tenant))
      ).json()) as Page;
      expect(second.events.map((e) => e.id)).toEqual([all.events[2]!.id]);
      expect(second.nextCursor).toBeNull();
    }));

  it("answers 400 for a forged cursor, a bad limit, a bad date, and a missing tenant", () =>
    withRollback(sdk, async () => {
      const [tenant, reader, platformReader] = [await newTenant(), await newUser(), await newUser()];
      await sdk.permissions.assignRole(reader, "auditor", { tenant });
      await sdk.permissions.assignRole(platformReader, "auditor");
      const forged = await get(
        `/api/v1/audit/events?cursor=${Buffer.from("[1,2]").toString("base64url")}`,
        as(reader, tenant),
      );
      expect(forged.status).toBe(400);
      expect(await forged.json()).toMatchObject({ code: "INVALID_CURSOR" });
      const limit = await get(`/api/v1/audit/events?limit=5000`, as(reader, tenant));
      expect(limit.status).toBe(400);
      expect(await limit.json()).toMatchObject({
        code: "VALIDATION_FAILED",
        errors: [expect.objectContaining({ path: "limit" })],
      });
      expect((await get(`/api/v1/audit/events?from=yesterday`, as(reader, tenant))).status).toBe(400);
      const noTenant = await get(`/api/v1/audit/events`, as(platformReader));
      expect(noTenant.status).toBe(400);
      expect(await noTenant.json()).toMatchObject({ code: "TENANT_REQUIRED" });
    }));

  it("answers 401 without a user and 403 without audit:read in the tenant", () =>
    withRollback(sdk, async () => {
      const [tenant, member] = [await newTenant(), await newUser()];
      await sdk.permissions.assignRole(member, "member");
      expect((await get(`/api/v1/audit/events`, as(null, tenant))).status).toBe(401);
      const denied = await get(`/api/v1/audit/events`, as(member, tenant));
      expect(denied.status).toBe(403);
      expect(await denied.json()).toMatchObject({ permission: "audit:read" });
    }));

  it("never shows tenant A's reader tenant B's events", () =>
    withRollback(sdk, async () => {
      const [tenantA, tenantB, reader] = [await newTenant(), await newTenant(), await newUser()];
      await sdk.permissions.assignRole(reader, "auditor", { tenant: tenantA });
      const marker = `m-${randomUUID()}`;
      await seedEvents(tenantA, tenantB, marker);
      // Asking in tenant B: no permission there.
      expect((await get(`/api/v1/audit/events?targetType=${marker}`, as(reader, tenantB))).status).toBe(403);
      // Asking for B's event by its target from A: row-level security hides it.
      const probe = (await (
        await get(`/api/v1/audit/events?targetType=${marker}&targetId=secret`, as(reader, tenantA))
      ).json()) as Page;
      expect(probe.events).toEqual([]);
      // A tenant reader cannot widen the scope.
      expect((await get(`/api/v1/audit/events?scope=platform`, as(reader, tenantA))).status).toBe(403);
      expect((await get(`/api/v1/audit/events?tenantId=${tenantB}`, as(reader, tenantA))).status).toBe(400);
      // And the SDK read is confined the same way.
      const direct = await sdk.audit.queryEvents({ tenantId: tenantA, targetType: marker, targetId: "secret" });
      expect(direct.events).toEqual([]);
    }));

  it("shows platform readers every tenant, one tenant, or platform events", () =>
    withRollback(sdk, async () => {
      const [tenantA, tenantB, admin] = [await newTenant(), await newTenant(), await newUser()];
      await sdk.permissions.assignRole(admin, "auditor");
      const marker = `m-${randomUUID()}`;
      await seedEvents(tenantA, tenantB, marker);
      const everything = (await (
        await get(`/api/v1/audit/events?scope=platform&targetType=${marker}`, as(admin))
      ).json()) as Page;
      expect(everything.events).toHaveLength(5);
      const onlyB = (await (
        await get(`/api/v1/audit/events?scope=platform&tenantId=${tenantB}&targetType=${marker}`, as(admin))
      ).json()) as Page;
      expect(onlyB.events.map((e) => e.tenantId)).toEqual([tenantB]);
      const platform = (await (
        await get(`/api/v1/audit/events?scope=platform&tenantId=platform&targetType=${marker}`, as(admin))
      ).json()) as Page;
      expect(platform.events.map((e) => e.action)).toEqual(["platform.configured"]);
    }));
});

describe("GET /api/v1/audit/events/export", () => {
  // The export reads committed rows on its own connection: these events are committed (under tenant
  // ids no other test uses); users and roles stay inside each test's rollback.
  const tenant = randomUUID();
  const other = randomUUID();
  const marker = `export-${randomUUID()}`;
  const COUNT = 1203;
  let seeded: Promise<void> | undefined;
  const seed = () =>
    (seeded ??= sdk
      .transaction(async () => {
        await sdk.audit.recordAuditEvents(
          Array.from({ length: COUNT }, (_, i) => ({
            action: "item.exported",
            tenantId: tenant,
            target: { type: marker, id: i === 0 ? '=HYPERLINK("x"),"quoted"' : String(i) },
            metadata: { n: i },
          })),
        );
        await sdk.audit.recordAuditEvent({
          action: "item.exported",
          tenantId: other,
          target: { type: marker, id: "other" },
        });
      })
      .then(() => outboxSettled(sdk)));

  async function reader() {
    await newTenant(tenant);
    const id = await newUser();
    await sdk.permissions.assignRole(id, "auditor", { tenant });
    return id;
  }

  it("streams every matching event as NDJSON, across cursor batches", async () => {
    await seed();
    await withRollback(sdk, async () => {
      const res = await get(`/api/v1/audit/events/export?targetType=${marker}`, as(await reader(), tenant));
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain("application/x-ndjson");
      const lines = (await res.text())
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { tenantId: string; id: string });
      expect(lines).toHaveLength(COUNT);
      expect(new Set(lines.map((l) => l.tenantId))).toEqual(new Set([tenant]));
      const ids = lines.map((l) => BigInt(l.id));
      expect(ids.every((id, i) => i === 0 || id < ids[i - 1]!)).toBe(true);
    });
  });

  it("streams CSV with a header, quoting, and formulas defused", async () => {
    await seed();
    await withRollback(sdk, async () => {
      const res = await get(
        `/api/v1/audit/events/export?format=csv&targetType=${marker}&targetId=${encodeURIComponent('=HYPERLINK("x"),"quoted"')}`,
        as(await reader(), tenant),
      );
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain("text/csv");
      const [header, row, ...rest] = (await res.text()).split("\r\n");
      expect(header).toBe(
        "id,occurred_at,tenant_id,actor_type,actor_id,action,target_type,target_id,ip,user_agent,request_id,metadata,changes",
      );
      expect(row).toContain(`"'=HYPERLINK(""x""),""quoted"""`);
      expect(row).toContain(`"{""n"":0}"`);
      expect(rest).toEqual([""]);
    });
  });

  it("answers 400 for an unknown format, 401 without a user, 403 without audit:read, and stays in its tenant", async () => {
    await seed();
    await withRollback(sdk, async () => {
      const id = await reader();
      expect((await get(`/api/v1/audit/events/export?format=xml`, as(id, tenant))).status).toBe(400);
      // A NUL is refused before the stream starts: a 400, not a connection cut after 200.
      const nul = await get(`/api/v1/audit/events/export?targetId=a%00b`, as(id, tenant));
      expect(nul.status).toBe(400);
      expect(await nul.json()).toMatchObject({ code: "VALIDATION_FAILED" });
      expect((await get(`/api/v1/audit/events/export`, as(null, tenant))).status).toBe(401);
      expect((await get(`/api/v1/audit/events/export`, as(id, other))).status).toBe(403);
      const res = await get(`/api/v1/audit/events/export?targetType=${marker}&targetId=other`, as(id, tenant));
      expect(await res.text()).toBe("");
    });
  });

  it("releases its connection when the client stops reading", async () => {
    await seed();
    // More abandoned exports than the pool has connections: each must give its connection back.
    for (let i = 0; i < 12; i++) {
      const stream = sdk.audit.exportEvents({ tenantId: tenant, targetType: marker }, "ndjson");
      const reader = stream.getReader();
      const first = await reader.read();
      expect(first.done).toBe(false);
      await reader.cancel();
    }
    const page = await sdk.audit.queryEvents({ tenantId: tenant, targetType: marker, limit: 1 });
    expect(page.events).toHaveLength(1);
  });
});
