import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import {
  cookieHeader,
  fromDatabasesOf,
  json,
  signedInUser,
  tenantOf,
  TEST_ORIGIN,
  useTestSdk,
} from "../../../test/support.js";
import { withRollback } from "../../testing/rollback.js";
import { auditLogs } from "../audit/index.js";
import { emailSends } from "../email/index.js";
import { userRoles } from "../permissions/index.js";
import { sessions, users } from "./schema.js";

const { sdk, app } = useTestSdk();
const rolledBack = (fn: () => Promise<void>) => () => withRollback(sdk, fn);

const actions = async (filter: { actorId?: string; targetId?: string }) => {
  const rows = await fromDatabasesOf(sdk, "audit", () =>
    sdk.router
      .db("audit")
      .select({
        action: auditLogs.action,
        actorId: auditLogs.actorId,
        targetId: auditLogs.targetId,
        metadata: auditLogs.metadata,
      })
      .from(auditLogs),
  );
  return rows.filter(
    (r) => (!filter.actorId || r.actorId === filter.actorId) && (!filter.targetId || r.targetId === filter.targetId),
  );
};

const signUp = (email: string, password = "correct horse battery staple", headers: Record<string, string> = {}) =>
  app.request("/api/auth/sign-up/email", json("POST", { email, password, name: "Ada" }, headers));

describe("sign-up, verification, sign-in, session, sign-out over HTTP", () => {
  it(
    "walks the whole journey and audits each step",
    rolledBack(async () => {
      const email = `ada-${randomUUID()}@example.test`;
      const password = "correct horse battery staple";
      const signUpResponse = await signUp(email, password);
      expect(signUpResponse.status).toBe(200);
      const { user } = (await signUpResponse.json()) as { user: { id: string } };

      // The verification mail is a row in the outbox, written in the sign-up's unit of work.
      const [mail] = await sdk.router.db("email").select().from(emailSends).where(eq(emailSends.toAddress, email));
      expect(mail).toMatchObject({ templateKey: "verify-email", category: "account", userId: user.id });
      const link = /https?:\/\/[^\s"'<>]+verify-email\?token=[^\s"'<>&]+/.exec(mail!.text)?.[0];
      expect(link).toBeDefined();
      const verify = await app.request(new URL(link!).pathname + new URL(link!).search);
      expect([200, 302]).toContain(verify.status);
      const [verified] = await sdk.router
        .db("auth")
        .select({ v: users.emailVerified })
        .from(users)
        .where(eq(users.id, user.id));
      expect(verified!.v).toBe(true);

      const signIn = await app.request("/api/auth/sign-in/email", json("POST", { email, password }));
      expect(signIn.status).toBe(200);
      const cookie = cookieHeader(signIn.headers);
      expect(signIn.headers.getSetCookie().join("\n")).toMatch(/HttpOnly/i);
      expect(signIn.headers.getSetCookie().join("\n")).toMatch(/SameSite=Lax/i);

      const session = await app.request("/api/auth/get-session", { headers: { cookie } });
      expect(((await session.json()) as { user: { email: string } }).user.email).toBe(email);

      const signOut = await app.request("/api/auth/sign-out", {
        method: "POST",
        headers: { cookie, origin: TEST_ORIGIN },
      });
      expect(signOut.status).toBe(200);
      const after = await app.request("/api/v1/me", {
        headers: { cookie: cookieHeader(signOut.headers) || cookie.split("; ")[0]! },
      });
      expect(after.status).toBe(401);

      const recorded = (await actions({ actorId: user.id })).map((r) => r.action);
      expect(recorded).toEqual(
        expect.arrayContaining(["user.signed_up", "user.email_verified", "user.signed_in", "user.signed_out"]),
      );
      // The default role was assigned in the same unit of work as the user.
      const assignments = await sdk.router
        .db("permissions")
        .select()
        .from(userRoles)
        .where(eq(userRoles.userId, user.id));
      expect(assignments.length).toBeGreaterThanOrEqual(1);
    }),
  );

  it(
    "answers a wrong password with 401 problem+json and audits the failure",
    rolledBack(async () => {
      const ada = await signedInUser(sdk);
      const res = await app.request(
        "/api/auth/sign-in/email",
        json("POST", { email: ada.user.email, password: "not the password" }),
      );
      expect(res.status).toBe(401);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
      const body = (await res.json()) as { code: string; requestId: string };
      expect(body.code).toBe("INVALID_EMAIL_OR_PASSWORD");
      expect(body.requestId).toBeTruthy();
      const failures = (await actions({})).filter(
        (r) => r.action === "user.sign_in_failed" && (r.metadata as { email?: string })?.email === ada.user.email,
      );
      expect(failures).toHaveLength(1);
      expect(JSON.stringify(failures[0])).not.toContain("not the password");
    }),
  );

  it(
    "gives a duplicate sign-up the same answer as a new one (no account enumeration)",
    rolledBack(async () => {
      const email = `dup-${randomUUID()}@example.test`;
      const first = await signUp(email);
      const second = await signUp(email);
      expect(second.status).toBe(first.status);
      const a = (await first.json()) as { user: Record<string, unknown> };
      const b = (await second.json()) as { user: Record<string, unknown> };
      expect(Object.keys(b.user).sort()).toEqual(Object.keys(a.user).sort());
      const rows = await sdk.router.db("auth").select().from(users).where(eq(users.email, email));
      expect(rows).toHaveLength(1);
    }),
  );

  it(
    "refuses passwords shorter than 8 or longer than 128 characters",
    rolledBack(async () => {
      expect((await signUp(`s-${randomUUID()}@example.test`, "short7!")).status).toBe(400);
      expect((await signUp(`l-${randomUUID()}@example.test`, "x".repeat(129))).status).toBe(400);
    }),
  );

  it(
    "refuses a request from an untrusted origin",
    rolledBack(async () => {
      const ada = await signedInUser(sdk);
      const res = await app.request(
        "/api/auth/sign-in/email",
        json(
          "POST",
          { email: ada.user.email, password: ada.password },
          { origin: "https://evil.example", cookie: ada.cookie },
        ),
      );
      expect(res.status).toBe(403);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
    }),
  );
});

describe("request context for /api/v1", () => {
  it(
    "answers 401 problem+json without a session, and with forged or expired cookies",
    rolledBack(async () => {
      const none = await app.request("/api/v1/me");
      expect(none.status).toBe(401);
      expect(((await none.json()) as { code: string }).code).toBe("SESSION_REQUIRED");

      const forged = await app.request("/api/v1/me", {
        headers: { cookie: "sv.session_token=forged.value; sv.session_data=eyJmb3JnZWQiOnRydWV9" },
      });
      expect(forged.status).toBe(401);

      const ada = await signedInUser(sdk);
      const tokenOnly = ada.cookie.split("; ").find((c) => c.startsWith("sv.session_token="))!;
      expect((await app.request("/api/v1/me", { headers: { cookie: tokenOnly } })).status).toBe(200);
      await sdk.router
        .db("auth")
        .update(sessions)
        .set({ expiresAt: new Date(Date.now() - 1000) })
        .where(eq(sessions.userId, ada.user.id));
      expect((await app.request("/api/v1/me", { headers: { cookie: tokenOnly } })).status).toBe(401);
    }),
  );

  it(
    "accepts a bearer token as well as the cookie",
    rolledBack(async () => {
      const ada = await signedInUser(sdk);
      const res = await app.request("/api/v1/me", { headers: { authorization: `Bearer ${ada.token}` } });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { user: { id: string } }).user.id).toBe(ada.user.id);
    }),
  );

  it(
    "takes the tenant from X-Tenant-Id only for members",
    rolledBack(async () => {
      const owner = await signedInUser(sdk);
      const { tenant, headers } = await tenantOf(sdk, owner);
      const me = await app.request("/api/v1/me", { headers });
      expect(((await me.json()) as { tenant: { id: string } }).tenant.id).toBe(tenant.id);

      const stranger = await signedInUser(sdk);
      const refused = await app.request("/api/v1/me", { headers: { ...stranger.headers, "x-tenant-id": tenant.id } });
      expect(refused.status).toBe(403);
      const malformed = await app.request("/api/v1/me", {
        headers: { ...stranger.headers, "x-tenant-id": "not-a-uuid" },
      });
      expect(malformed.status).toBe(400);
    }),
  );
});

describe("organizations (tenants)", () => {
  it(
    "creates, invites, accepts and sets active, mirroring roles and auditing each step",
    rolledBack(async () => {
      const owner = await signedInUser(sdk);
      const create = await app.request(
        "/api/auth/organization/create",
        json("POST", { name: "Acme", slug: `acme-${randomUUID()}` }, owner.headers),
      );
      expect(create.status).toBe(200);
      const org = (await create.json()) as { id: string };

      const invitee = await signedInUser(sdk);
      const invite = await app.request(
        "/api/auth/organization/invite-member",
        json("POST", { email: invitee.user.email, role: "member", organizationId: org.id }, owner.headers),
      );
      expect(invite.status).toBe(200);
      const invitation = (await invite.json()) as { id: string };
      const [mail] = await sdk.withTenant(org.id, () =>
        sdk.router.db("email").select().from(emailSends).where(eq(emailSends.toAddress, invitee.user.email)),
      );
      expect(mail?.templateKey).toBe("invitation");

      const accept = await app.request(
        "/api/auth/organization/accept-invitation",
        json("POST", { invitationId: invitation.id }, invitee.headers),
      );
      expect(accept.status).toBe(200);
      const setActive = await app.request(
        "/api/auth/organization/set-active",
        json("POST", { organizationId: org.id }, invitee.headers),
      );
      expect(setActive.status).toBe(200);
      // set-active refreshes the session cookie cache with the active organization.
      const refreshed = {
        ...Object.fromEntries(invitee.cookie.split("; ").map((c) => c.split("="))),
        ...Object.fromEntries(
          cookieHeader(setActive.headers)
            .split("; ")
            .filter(Boolean)
            .map((c) => c.split("=")),
        ),
      };
      const me = await app.request("/api/v1/me", {
        headers: {
          cookie: Object.entries(refreshed)
            .map(([k, v]) => `${k}=${v}`)
            .join("; "),
        },
      });
      expect(((await me.json()) as { tenant: { id: string } | null }).tenant?.id).toBe(org.id);

      expect(await sdk.permissions.can(owner.user.id, "anything:at-all", { tenant: org.id })).toBe(true);
      expect(await sdk.permissions.can(invitee.user.id, "roles:write", { tenant: org.id })).toBe(false);
      const inTenant = await sdk.withTenant(org.id, () =>
        sdk.router.db("permissions").select().from(userRoles).where(eq(userRoles.userId, invitee.user.id)),
      );
      expect(inTenant.some((a) => a.tenantId === org.id)).toBe(true);

      const trail = (await actions({})).map((r) => r.action);
      expect(trail).toEqual(expect.arrayContaining(["tenant.created", "member.added", "member.invited"]));
    }),
  );
});
