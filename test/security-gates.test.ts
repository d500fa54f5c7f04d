/**
 * Issue 14's reproductions, refused — each as a user or an attacker would try it, with rate limits
 * on and the cookie cache on (the configuration users run), on a database of its own (two SDK
 * instances share it, as two servers of one deployment would).
 */
import { randomUUID } from "node:crypto";
import { decodeJwt } from "jose";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../src/app.js";
import { clientAddressResolver, parseTrustProxy } from "../src/http/client-address.js";
import { loggablePath } from "../src/app.js";
import { createSdk, type Sdk } from "../src/index.js";
import {
  addTestMember,
  cookieHeader,
  createTestTenant,
  createTestUser,
  TEST_ORIGIN,
  cheapHashingTestSdkOptions,
  type TestUser,
} from "../src/testing.js";
import { createIsolatedTopology, json, outboxSettled, type IsolatedTopology } from "./support.js";

let db: IsolatedTopology;
let owner: postgres.Sql;
let sdk: Sdk;
let app: ReturnType<typeof createApp>;
let other: Sdk;
let otherApp: ReturnType<typeof createApp>;
const secret = randomUUID() + randomUUID();

/** Rate limits on, cookie cache on (the defaults); cheap hashing, since no test here is about password cost. */
const protectedOptions = (database: IsolatedTopology) =>
  cheapHashingTestSdkOptions(database.main, { ...database.placement, auth: { secret } });

beforeAll(async () => {
  db = await createIsolatedTopology();
  owner = db.owner;
  sdk = createSdk(protectedOptions(db));
  other = createSdk(protectedOptions(db));
  app = createApp(sdk, { logRequests: false });
  otherApp = createApp(other, { logRequests: false });
  await Promise.all([sdk.auth.listen(), other.auth.listen()]);
});
afterAll(async () => {
  await sdk.close();
  await other.close();
  await db.drop();
});

const v1 = (user: TestUser, tenantId: string) => ({ ...user.headers, "x-tenant-id": tenantId });

/** Polls `fn` until it returns `want`, for at most a second (events cross instances by NOTIFY). */
async function within1s<T>(fn: () => Promise<T>, want: T): Promise<T> {
  const deadline = Date.now() + 1000;
  let value = await fn();
  while (value !== want && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    value = await fn();
  }
  return value;
}

async function assignmentsIn(userId: string, tenantId: string) {
  return (await db.ownerSqlForTenant(sdk, tenantId, "permissions"))<{ role: string }[]>`
    select r.name as role from permissions.user_roles ur join permissions.roles r on r.id = ur.role_id
     where ur.user_id = ${userId} and ur.tenant_id = ${tenantId}`;
}

describe("membership is the gate", () => {
  it("a member who leaves loses every role in the tenant at once, audited, on every instance", async () => {
    const boss = await createTestUser(sdk);
    const { tenant } = await createTestTenant(sdk, boss);
    const leaver = await createTestUser(sdk);
    await addTestMember(sdk, tenant.id, leaver.user.id, "admin");
    await sdk.permissions.assignRole(leaver.user.id, "auditor", { tenant: tenant.id });
    // Warm both instances: the leaver acts as an admin there.
    for (const served of [app, otherApp]) {
      expect((await served.request("/api/v1/permissions/roles", { headers: v1(leaver, tenant.id) })).status).toBe(200);
    }

    const left = await app.request(
      "/api/auth/organization/leave",
      json("POST", { organizationId: tenant.id }, leaver.headers),
    );
    expect(left.status).toBe(200);
    expect(await assignmentsIn(leaver.user.id, tenant.id)).toEqual([]);
    // With the tenant on a database of its own, events recorded in a unit on main travel through its outbox.
    await outboxSettled(sdk);
    const events = await (await db.ownerSqlForTenant(sdk, tenant.id, "audit"))<
      { action: string; reason: string | null }[]
    >`
      select action, metadata->>'reason' as reason from audit.audit_logs
       where tenant_id = ${tenant.id} and target_id = ${leaver.user.id} and action in ('member.left', 'role.unassigned')`;
    expect(events.filter((e) => e.action === "role.unassigned").map((e) => e.reason)).toEqual([
      "member.left",
      "member.left",
    ]);
    expect(events.some((e) => e.action === "member.left")).toBe(true);

    // Creating roles and reading the audit trail in the old tenant: refused everywhere.
    const create = async () =>
      (
        await otherApp.request(
          "/api/v1/permissions/roles",
          json("POST", { name: `r-${randomUUID().slice(0, 8)}`, permissions: [] }, v1(leaver, tenant.id)),
        )
      ).status;
    expect(await within1s(create, 403)).toBe(403);
    expect((await app.request("/api/v1/audit/events", { headers: v1(leaver, tenant.id) })).status).toBe(403);
  });

  it("a removed member's active tenant stops acting for it, and custom roles go too", async () => {
    const boss = await createTestUser(sdk);
    const { tenant } = await createTestTenant(sdk, boss);
    const member = await createTestUser(sdk);
    await addTestMember(sdk, tenant.id, member.user.id, "member");
    await sdk.permissions.assignRole(member.user.id, "auditor", { tenant: tenant.id });
    const active = await app.request(
      "/api/auth/organization/set-active",
      json("POST", { organizationId: tenant.id }, member.headers),
    );
    expect(active.status).toBe(200);
    const cookie = [member.cookie, cookieHeader(active.headers)].join("; ");
    const sessionCookie = Object.entries(
      Object.fromEntries(cookie.split("; ").map((c) => c.split("=") as [string, string])),
    )
      .map(([k, val]) => `${k}=${val}`)
      .join("; ");
    const me = async () =>
      (
        (await (await otherApp.request("/api/v1/me", { headers: { cookie: sessionCookie } })).json()) as {
          tenant: { id: string } | null;
        }
      ).tenant?.id ?? null;
    expect(await me()).toBe(tenant.id);

    const removed = await app.request(
      "/api/auth/organization/remove-member",
      json("POST", { memberIdOrEmail: member.user.email, organizationId: tenant.id }, boss.headers),
    );
    expect(removed.status).toBe(200);
    expect(await assignmentsIn(member.user.id, tenant.id)).toEqual([]);
    // The session (its signed cookie-cache copy still naming the tenant) acts in no tenant now.
    expect(await within1s(me, null)).toBeNull();
    expect((await otherApp.request("/api/v1/audit/events", { headers: { cookie: sessionCookie } })).status).toBe(403);
  });

  it("refuses X-Tenant-Id of a tenant the user is not a member of", async () => {
    const stranger = await createTestUser(sdk);
    const boss = await createTestUser(sdk);
    const { tenant } = await createTestTenant(sdk, boss);
    const res = await app.request("/api/v1/me", { headers: v1(stranger, tenant.id) });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: "NOT_A_MEMBER" });
  });

  it("keeps the tenant's last owner: a tenant admin cannot remove the owner's role (409), a platform administrator can", async () => {
    const boss = await createTestUser(sdk);
    const { tenant } = await createTestTenant(sdk, boss);
    const admin = await createTestUser(sdk);
    await addTestMember(sdk, tenant.id, admin.user.id, "admin");
    const [ownerRow] = await (await db.ownerSqlForTenant(sdk, tenant.id, "permissions"))<{ id: string }[]>`
      select ur.id from permissions.user_roles ur join permissions.roles r on r.id = ur.role_id
       where ur.user_id = ${boss.user.id} and ur.tenant_id = ${tenant.id} and r.name = 'owner'`;
    const refused = await app.request(`/api/v1/permissions/assignments/${ownerRow!.id}`, {
      method: "DELETE",
      headers: v1(admin, tenant.id),
    });
    expect([403, 409]).toContain(refused.status);
    expect(await assignmentsIn(boss.user.id, tenant.id)).toEqual(expect.arrayContaining([{ role: "owner" }]));
    // As the owner itself (a tenant owner, not a platform administrator): still the last one.
    const self = await app.request(`/api/v1/permissions/assignments/${ownerRow!.id}`, {
      method: "DELETE",
      headers: v1(boss, tenant.id),
    });
    expect(self.status).toBe(409);
    expect(await self.json()).toMatchObject({ code: "LAST_OWNER" });

    const platform = await createTestUser(sdk);
    await sdk.permissions.assignRole(platform.user.id, "owner");
    await sdk.withContext({ actor: { type: "user", id: platform.user.id } }, () =>
      sdk.permissions.removeAssignment(ownerRow!.id, { tenant: tenant.id }),
    );
    expect(await assignmentsIn(boss.user.id, tenant.id)).toEqual([]);
  });

  it("lets a tenant admin check its own members only", async () => {
    const boss = await createTestUser(sdk);
    const { tenant } = await createTestTenant(sdk, boss);
    const outsider = await createTestUser(sdk);
    const res = await app.request(
      "/api/v1/permissions/check",
      json("POST", { userId: outsider.user.id, permissions: ["*"] }, v1(boss, tenant.id)),
    );
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: "USER_NOT_IN_TENANT" });
  });
});

describe("one session truth", () => {
  it("ends a signed-out session on /api/auth/* on every instance within a second: get-session, token, update-user", async () => {
    const user = await createTestUser(sdk);
    const headers = { cookie: user.cookie, origin: TEST_ORIGIN };
    expect(user.cookie).toContain("session_data");
    const session = async () =>
      ((await (await otherApp.request("/api/auth/get-session", { headers })).json()) as { user?: unknown } | null)
        ?.user !== undefined;
    expect(await session()).toBe(true);

    expect((await app.request("/api/auth/sign-out", { method: "POST", headers })).status).toBe(200);
    expect(await within1s(session, false)).toBe(false);
    expect((await otherApp.request("/api/auth/token", { headers })).status).toBe(401);
    const update = await otherApp.request("/api/auth/update-user", json("POST", { name: "Mallory" }, headers));
    expect(update.status).toBe(401);
    const [row] = await owner<{ name: string }[]>`select name from auth.users where id = ${user.user.id}`;
    expect(row!.name).not.toBe("Mallory");
    // The browser is told to drop the dead cookies.
    const cleared = await otherApp.request("/api/auth/get-session", { headers });
    expect(cleared.headers.getSetCookie().some((line) => /session_data=;/.test(line))).toBe(true);
  });

  it("sees a new active tenant on the next request, bearer token included", async () => {
    const user = await createTestUser(sdk);
    const { tenant } = await createTestTenant(sdk, user);
    // Creating a tenant makes it the active one: the second is active now.
    const { tenant: second } = await createTestTenant(sdk, user);
    const bearer = { authorization: `Bearer ${user.token}` };
    const tenantOf = async (served: typeof app) =>
      ((await (await served.request("/api/v1/me", { headers: bearer })).json()) as { tenant: { id: string } | null })
        .tenant?.id ?? null;
    expect(await tenantOf(app)).toBe(second.id);
    expect(await tenantOf(otherApp)).toBe(second.id);
    const set = await app.request(
      "/api/auth/organization/set-active",
      json("POST", { organizationId: tenant.id }, bearer),
    );
    expect(set.status).toBe(200);
    expect(await tenantOf(app)).toBe(tenant.id);
    expect(await within1s(() => tenantOf(otherApp), tenant.id)).toBe(tenant.id);
  });

  it("does not record a revocation for a token that is not one of the caller's sessions", async () => {
    const caller = await createTestUser(sdk);
    const victim = await createTestUser(sdk);
    const res = await app.request(
      "/api/auth/revoke-session",
      json("POST", { token: victim.token.split(".")[0] }, caller.headers),
    );
    expect(res.status).toBe(404);
    expect((await app.request("/api/v1/me", { headers: { authorization: `Bearer ${victim.token}` } })).status).toBe(
      200,
    );
    const [events] = await db.ownerSqlFor("audit")<{ n: number }[]>`
      select count(*)::int as n from audit.audit_logs where action = 'session.revoked' and actor_id = ${caller.user.id}`;
    expect(events!.n).toBe(0);
  });
});

describe("session lifetime", () => {
  it("ends a session at its absolute lifetime however it is used, on /api/v1 and /api/auth alike", async () => {
    const brief = createSdk({
      ...protectedOptions(db),
      auth: { ...protectedOptions(db).auth, sessionMaxAgeSeconds: 2 },
    });
    const briefApp = createApp(brief, { logRequests: false });
    try {
      await brief.auth.listen();
      const user = await createTestUser(brief);
      const me = async (headers: Record<string, string>) => (await briefApp.request("/api/v1/me", { headers })).status;
      expect(await me(user.headers)).toBe(200);
      expect(await me({ authorization: `Bearer ${user.token}` })).toBe(200);
      await new Promise((r) => setTimeout(r, 2_300));
      expect(await me(user.headers)).toBe(401);
      expect(await me({ authorization: `Bearer ${user.token}` })).toBe(401);
      const session = await briefApp.request("/api/auth/get-session", {
        headers: { authorization: `Bearer ${user.token}` },
      });
      expect(await session.json()).toBeNull();
    } finally {
      await brief.close();
    }
  });
});

describe("get-session from the session cache", () => {
  it("answers a repeated get-session with better-auth's own answer and no statement, and stops at a sign-out", async () => {
    let statements = 0;
    const counted = createSdk({ ...protectedOptions(db), onQuery: () => statements++ });
    const countedApp = createApp(counted, { logRequests: false });
    try {
      const user = await createTestUser(counted);
      const ask = async () => {
        const before = statements;
        const res = await countedApp.request("/api/auth/get-session", { headers: user.headers });
        expect(res.status).toBe(200);
        return { body: await res.json(), statements: statements - before };
      };
      // better-auth answers first (and the session feed starts); then the cache holds the answer.
      const first = await ask();
      expect(first.body).toMatchObject({ user: { id: user.user.id }, session: { userId: user.user.id } });
      let cached = await ask();
      for (let i = 0; i < 20 && cached.statements > 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        cached = await ask();
      }
      expect(cached.statements).toBe(0);
      expect(cached.body).toEqual(first.body);
      // With an option, better-auth answers (the cache serves only the plain call).
      const fresh = await countedApp.request("/api/auth/get-session?disableCookieCache=true", {
        headers: user.headers,
      });
      expect(await fresh.json()).toEqual(first.body);
      expect((await countedApp.request("/api/auth/sign-out", { method: "POST", headers: user.headers })).status).toBe(
        200,
      );
      expect(await (await countedApp.request("/api/auth/get-session", { headers: user.headers })).json()).toBeNull();
    } finally {
      await counted.close();
    }
  });
});

describe("tokens for other services", () => {
  it("live five minutes, name the session and tenant, and are listed as revoked within a second of a sign-out", async () => {
    const user = await createTestUser(sdk);
    const { tenant } = await createTestTenant(sdk, user);
    const minted = await app.request("/api/auth/token", { headers: user.headers });
    expect(minted.status).toBe(200);
    const claims = decodeJwt(((await minted.json()) as { token: string }).token);
    expect(claims.exp! - claims.iat!).toBe(300);
    expect(claims).toMatchObject({ sub: user.user.id, tid: tenant.id });
    expect(typeof claims.sid).toBe("string");

    const listed = async () => {
      const body = (await (await otherApp.request("/api/v1/tokens/revocations")).json()) as {
        ttlSeconds: number;
        revoked: { sub: string; revokedAt: number }[];
      };
      expect(body.ttlSeconds).toBe(300);
      // A service rejects a token of a listed sub issued at or before revokedAt.
      return body.revoked.some((r) => r.sub === user.user.id && r.revokedAt >= claims.iat!);
    };
    expect(await listed()).toBe(false);
    expect((await app.request("/api/auth/sign-out", { method: "POST", headers: user.headers })).status).toBe(200);
    expect(await within1s(listed, true)).toBe(true);
  });

  it("keep a deleted user listed as revoked for a token lifetime, however the user was deleted", async () => {
    const user = await createTestUser(sdk);
    const minted = await app.request("/api/auth/token", { headers: user.headers });
    const claims = decodeJwt(((await minted.json()) as { token: string }).token);
    const listed = async () => {
      const body = (await (await otherApp.request("/api/v1/tokens/revocations")).json()) as {
        revoked: { sub: string; revokedAt: number }[];
      };
      return body.revoked.some((r) => r.sub === user.user.id && r.revokedAt >= claims.iat!);
    };
    expect(await listed()).toBe(false);
    // Deleted by SQL, as an operator would: the revocation outlives the user's row.
    const owner = postgres(db.main.url, { max: 1, onnotice: () => {} });
    try {
      await owner`delete from auth.users where id = ${user.user.id}`;
      expect(await owner`select 1 from auth.users where id = ${user.user.id}`).toHaveLength(0);
    } finally {
      await owner.end({ timeout: 5 });
    }
    expect(await within1s(listed, true)).toBe(true);
    // The running instance heard it too: the deleted user's cookie no longer works.
    expect((await app.request("/api/v1/me", { headers: user.headers })).status).toBe(401);
  });
});

describe("password reset requests", () => {
  it("are answered before their work is done, the same for known and unknown emails", async () => {
    const user = await createTestUser(sdk);
    // While the reset's work is blocked, the answer for a known email still comes at once.
    const locker = postgres(db.main.url, { max: 1, onnotice: () => {} });
    try {
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const lock = locker.begin(async (tx) => {
        await tx`lock table auth.verifications in access exclusive mode`;
        await held;
      });
      await new Promise((r) => setTimeout(r, 50));
      const ask = (email: string) =>
        app.request(
          "/api/auth/request-password-reset",
          json("POST", { email }, { origin: TEST_ORIGIN, "x-forwarded-for": randomUUID() }),
        );
      const started = Date.now();
      const known = await ask(user.user.email);
      const unknown = await ask(`nobody-${randomUUID()}@example.test`);
      expect(Date.now() - started).toBeLessThan(1_500);
      expect(known.status).toBe(200);
      expect(await known.json()).toEqual(await unknown.json());
      release();
      await lock;
      const mail = async () =>
        (
          await owner<
            { n: number }[]
          >`select count(*)::int as n from email.email_sends where to_address = ${user.user.email} and template_key = 'reset-password'`
        )[0]!.n;
      expect(await within1s(mail, 1)).toBe(1);
    } finally {
      await locker.end({ timeout: 5 });
    }
    // A redirect off the trusted origins is refused at once, for every email alike.
    const evil = await app.request(
      "/api/auth/request-password-reset",
      json("POST", { email: user.user.email, redirectTo: "https://evil.example/steal" }, { origin: TEST_ORIGIN }),
    );
    expect(evil.status).toBe(403);
  });
});

describe("origins and proxies", () => {
  it("refuses a cookie-authenticated write from a foreign, null or missing Origin; a bearer token needs none", async () => {
    const user = await createTestUser(sdk);
    const { tenant } = await createTestTenant(sdk, user);
    const body = () => JSON.stringify({ name: `r-${randomUUID().slice(0, 8)}`, permissions: [] });
    const post = (headers: Record<string, string>) =>
      app.request("/api/v1/permissions/roles", {
        method: "POST",
        body: body(),
        headers: { "content-type": "application/json", "x-tenant-id": tenant.id, ...headers },
      });
    for (const origin of ["https://evil.example", "null", undefined]) {
      const res = await post({ cookie: user.cookie, ...(origin ? { origin } : {}) });
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({ code: "ORIGIN_NOT_TRUSTED" });
    }
    expect((await post({ cookie: user.cookie, origin: TEST_ORIGIN })).status).toBe(201);
    expect((await post({ authorization: `Bearer ${user.token}` })).status).toBe(201);
  });

  it("reads the client address from the right of X-Forwarded-For: a hop count, or the proxies' addresses", () => {
    const oneHop = clientAddressResolver(parseTrustProxy("1"));
    // An appending proxy: the client's forged entry stays on the left, the real address is appended.
    expect(oneHop("10.0.0.2", "6.6.6.6, 203.0.113.7")).toBe("203.0.113.7");
    expect(oneHop("10.0.0.2", undefined)).toBe("10.0.0.2");
    const twoHops = clientAddressResolver(parseTrustProxy("2"));
    expect(twoHops("10.0.0.2", "6.6.6.6, 203.0.113.7, 10.0.0.9")).toBe("203.0.113.7");
    const listed = clientAddressResolver(parseTrustProxy("10.0.0.0/8, 192.168.1.1"));
    expect(listed("10.0.0.2", "6.6.6.6, 203.0.113.7, 192.168.1.1")).toBe("203.0.113.7");
    // A request that did not come through our proxy: its header is not believed.
    expect(listed("198.51.100.4", "6.6.6.6")).toBe("198.51.100.4");
    expect(clientAddressResolver(parseTrustProxy("0"))("198.51.100.4", "6.6.6.6")).toBe("198.51.100.4");
    expect(() => parseTrustProxy("nonsense")).toThrow(/TRUST_PROXY/);
  });
});

describe("secrets stay out of the logs", () => {
  it("drops token-bearing path segments from the request log", () => {
    expect(loggablePath("/api/auth/reset-password/AbCdEf0123456789xyzAbCdEf0123456")).toBe(
      "/api/auth/reset-password/:token",
    );
    expect(loggablePath("/api/v1/me")).toBe("/api/v1/me");
    expect(loggablePath(`/api/v1/permissions/roles/${"a".repeat(40)}`)).toBe("/api/v1/permissions/roles/:redacted");
  });
});
