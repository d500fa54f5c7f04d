import { createHmac, randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { inject } from "vitest";
import {
  cookieHeader,
  fromDatabasesOf,
  json,
  signedInUser,
  tenantOf,
  TEST_ORIGIN,
  cheapHashingTestSdkOptions,
  useTestSdk,
} from "../../../test/support.js";
import { createApp } from "../../app.js";
import { createSdk } from "../../index.js";
import { withRollback } from "../../testing/rollback.js";
import { auditLogs } from "../audit/index.js";
import { emailSends } from "../email/index.js";
import { hashPassword, OWASP_SCRYPT, verifyPassword } from "./password.js";
import { sessions, users } from "./schema.js";

const { sdk, app } = useTestSdk();
const rolledBack = (fn: () => Promise<void>) => () => withRollback(sdk, fn);

const auditActions = async (targetId: string) =>
  (
    await fromDatabasesOf(sdk, "audit", () =>
      sdk.router
        .db("audit")
        .select({ action: auditLogs.action })
        .from(auditLogs)
        .where(eq(auditLogs.targetId, targetId)),
    )
  ).map((r) => r.action);

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  app.request(path, json("POST", body, { origin: TEST_ORIGIN, ...headers }));

/** RFC 6238 TOTP (SHA-1, 6 digits, 30 s), as an authenticator app computes it. */
function totp(otpauthUri: string, at = Date.now()): string {
  const secret = new URL(otpauthUri).searchParams.get("secret")!;
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const ch of secret.replace(/=+$/, "").toUpperCase()) bits += alphabet.indexOf(ch).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g)!.map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 30_000)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = mac[mac.length - 1]! & 0xf;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

describe("passwords", () => {
  it("hashes at OWASP's scrypt parameters and still verifies better-auth's own format", async () => {
    const hash = await hashPassword("correct horse battery", OWASP_SCRYPT);
    expect(hash).toMatch(/^\$scrypt\$ln=17,r=8,p=1\$/);
    expect(await verifyPassword({ hash, password: "correct horse battery" })).toBe(true);
    expect(await verifyPassword({ hash, password: "correct horse batterY" })).toBe(false);
    const { hashPassword: betterAuthDefault } = await import("better-auth/crypto");
    expect(
      await verifyPassword({ hash: await betterAuthDefault("legacy password"), password: "legacy password" }),
    ).toBe(true);
  });

  it("refuses a tampered hash with absurd parameters instead of allocating memory", async () => {
    const hash = await hashPassword("pw-123456", { ln: 10, r: 8, p: 1 });
    expect(await verifyPassword({ hash: hash.replace("ln=10", "ln=30"), password: "pw-123456" })).toBe(false);
  });
});

describe("sessions", () => {
  it(
    "issues a new session token on every sign-in",
    rolledBack(async () => {
      const ada = await signedInUser(sdk);
      const again = await post("/api/auth/sign-in/email", { email: ada.user.email, password: ada.password });
      expect(again.status).toBe(200);
      expect(again.headers.get("set-auth-token")).not.toBe(ada.token);
    }),
  );

  it(
    "revokes every session on password reset, and answers a reset request the same for unknown emails",
    rolledBack(async () => {
      const ada = await signedInUser(sdk);
      const unknown = await post("/api/auth/request-password-reset", {
        email: `nobody-${randomUUID()}@example.test`,
        redirectTo: "/reset",
      });
      const known = await post("/api/auth/request-password-reset", { email: ada.user.email, redirectTo: "/reset" });
      expect(known.status).toBe(200);
      expect(unknown.status).toBe(known.status);
      expect(await unknown.json()).toEqual(await known.json());

      // The reset's work is done after the answer (the answer must not tell known emails apart).
      const resetMail = () =>
        sdk.router.db("email").select().from(emailSends).where(eq(emailSends.templateKey, "reset-password"));
      for (let waited = 0; (await resetMail()).length === 0 && waited < 5_000; waited += 20)
        await new Promise((r) => setTimeout(r, 20));
      const [mail] = await resetMail();
      expect(mail?.toAddress).toBe(ada.user.email);
      const token = /reset-password\/([^?\s"'<>]+)/.exec(mail!.text)?.[1];
      expect(token).toBeTruthy();

      const reset = await post("/api/auth/reset-password", { token, newPassword: "a brand new passphrase" });
      expect(reset.status).toBe(200);
      const left = await sdk.router.db("auth").select().from(sessions).where(eq(sessions.userId, ada.user.id));
      expect(left).toHaveLength(0);
      // The old cookie, cache included, no longer works.
      expect((await app.request("/api/v1/me", { headers: ada.headers })).status).toBe(401);
      expect(await auditActions(ada.user.id)).toContain("user.password_reset_completed");
      const signIn = await post("/api/auth/sign-in/email", {
        email: ada.user.email,
        password: "a brand new passphrase",
      });
      expect(signIn.status).toBe(200);
    }),
  );
});

describe("admin", () => {
  it(
    "bans (revoking sessions), unbans and impersonates, each audited; non-admins are refused",
    rolledBack(async () => {
      const admin = await signedInUser(sdk);
      await sdk.router.db("auth").update(users).set({ role: "admin" }).where(eq(users.id, admin.user.id));
      const victim = await signedInUser(sdk);

      const refused = await post("/api/auth/admin/ban-user", { userId: admin.user.id }, victim.headers);
      expect(refused.status).toBe(403);

      const ban = await post("/api/auth/admin/ban-user", { userId: victim.user.id, banReason: "spam" }, admin.headers);
      expect(ban.status).toBe(200);
      expect((await app.request("/api/v1/me", { headers: victim.headers })).status).toBe(401);
      const signIn = await post("/api/auth/sign-in/email", { email: victim.user.email, password: victim.password });
      expect(signIn.status).toBe(403);

      expect((await post("/api/auth/admin/unban-user", { userId: victim.user.id }, admin.headers)).status).toBe(200);
      const impersonate = await post("/api/auth/admin/impersonate-user", { userId: victim.user.id }, admin.headers);
      expect(impersonate.status).toBe(200);
      const asVictim = { cookie: cookieHeader(impersonate.headers), origin: TEST_ORIGIN };
      const me = (await (await app.request("/api/v1/me", { headers: asVictim })).json()) as {
        user: { id: string };
        session: { impersonatedBy: string };
      };
      expect(me.user.id).toBe(victim.user.id);
      expect(me.session.impersonatedBy).toBe(admin.user.id);
      expect((await post("/api/auth/admin/stop-impersonating", {}, asVictim)).status).toBe(200);

      expect(await auditActions(victim.user.id)).toEqual(
        expect.arrayContaining([
          "user.banned",
          "user.unbanned",
          "user.impersonation_started",
          "user.impersonation_stopped",
        ]),
      );
    }),
  );
});

describe("two-factor", () => {
  it(
    "enables TOTP with backup codes, requires it at sign-in, and disables it, each audited",
    rolledBack(async () => {
      const ada = await signedInUser(sdk);
      const enable = await post("/api/auth/two-factor/enable", { password: ada.password }, ada.headers);
      expect(enable.status).toBe(200);
      const { totpURI, backupCodes } = (await enable.json()) as { totpURI: string; backupCodes: string[] };
      expect(backupCodes.length).toBeGreaterThan(0);
      expect(
        (
          await post(
            "/api/auth/two-factor/verify-totp",
            { code: "000000" === totp(totpURI) ? "111111" : "000000" },
            ada.headers,
          )
        ).status,
      ).toBe(401);
      expect((await post("/api/auth/two-factor/verify-totp", { code: totp(totpURI) }, ada.headers)).status).toBe(200);

      const signIn = await post("/api/auth/sign-in/email", { email: ada.user.email, password: ada.password });
      expect(((await signIn.json()) as { twoFactorRedirect?: boolean }).twoFactorRedirect).toBe(true);
      const pending = { cookie: cookieHeader(signIn.headers), origin: TEST_ORIGIN };
      expect((await app.request("/api/v1/me", { headers: pending })).status).toBe(401);
      const second = await post("/api/auth/two-factor/verify-backup-code", { code: backupCodes[0] }, pending);
      expect(second.status).toBe(200);

      // The second factor gave a full session; it disables two-factor again.
      const fresh = { cookie: cookieHeader(second.headers), origin: TEST_ORIGIN };
      expect((await app.request("/api/v1/me", { headers: fresh })).status).toBe(200);
      expect((await post("/api/auth/two-factor/disable", { password: ada.password }, fresh)).status).toBe(200);
      expect(await auditActions(ada.user.id)).toEqual(
        expect.arrayContaining(["user.two_factor_enabled", "user.two_factor_disabled"]),
      );
    }),
  );
});

describe("production rules", () => {
  const database = inject("svTestDatabase");
  const { url, appUrl } = database;

  it("refuses to create an SDK with a short secret in production", () => {
    expect(() =>
      createSdk({ databaseUrl: url, databaseAppUrl: appUrl, environment: "production", auth: { secret: "too-short" } }),
    ).toThrow(/at least 32 characters/);
    expect(() => createSdk({ databaseUrl: url, databaseAppUrl: appUrl, environment: "production" })).toThrow(
      /at least 32 characters/,
    );
  });

  it("sets Secure cookies and refuses sign-in before verification in production", async () => {
    const prod = createSdk(
      cheapHashingTestSdkOptions(database, {
        environment: "production",
        auth: { secret: randomUUID() + randomUUID(), passwordCost: OWASP_SCRYPT },
      }),
    );
    const prodApp = createApp(prod, { logRequests: false });
    try {
      await withRollback(prod, async () => {
        const email = `prod-${randomUUID()}@example.test`;
        const password = "correct horse battery staple";
        expect(
          (await prodApp.request("/api/auth/sign-up/email", json("POST", { email, password, name: "P" }))).status,
        ).toBe(200);
        const early = await prodApp.request(
          "/api/auth/sign-in/email",
          json("POST", { email, password }, { origin: TEST_ORIGIN }),
        );
        expect(early.status).toBe(403);
        expect(((await early.json()) as { code: string }).code).toBe("EMAIL_NOT_VERIFIED");
        await prod.router.db("auth").update(users).set({ emailVerified: true }).where(eq(users.email, email));
        const signIn = await prodApp.request(
          "/api/auth/sign-in/email",
          json("POST", { email, password }, { origin: TEST_ORIGIN }),
        );
        expect(signIn.status).toBe(200);
        for (const line of signIn.headers.getSetCookie()) {
          expect(line).toMatch(/;\s*Secure/i);
          expect(line).toMatch(/;\s*HttpOnly/i);
        }
      });
    } finally {
      await prod.close();
    }
  });

  it("sets SameSite=None; Secure session cookies when asked (a frontend on another site), Lax otherwise", async () => {
    const signInCookies = async (options: Parameters<typeof cheapHashingTestSdkOptions>[1]) => {
      const crossSite = createSdk(cheapHashingTestSdkOptions(database, options));
      const crossApp = createApp(crossSite, { logRequests: false });
      try {
        return await withRollback(crossSite, async () => {
          const email = `site-${randomUUID()}@example.test`;
          const password = "correct horse battery staple";
          await crossSite.auth.createUser({ email, password, name: "Site", emailVerified: true });
          const signIn = await crossApp.request(
            "/api/auth/sign-in/email",
            json("POST", { email, password }, { origin: TEST_ORIGIN }),
          );
          expect(signIn.status).toBe(200);
          return signIn.headers.getSetCookie();
        });
      } finally {
        await crossSite.close();
      }
    };
    const none = await signInCookies({ auth: { cookieSameSite: "none" } });
    expect(none.length).toBeGreaterThan(0);
    for (const line of none) expect(line).toMatch(/;\s*SameSite=None.*;\s*Secure|;\s*Secure.*;\s*SameSite=None/i);
    const lax = await signInCookies({});
    for (const line of lax) {
      expect(line).toMatch(/;\s*SameSite=Lax/i);
      expect(line).not.toMatch(/;\s*Secure/i);
    }
  });

  it("refuses a password hashing cost below OWASP's in production", () => {
    expect(() =>
      createSdk({
        databaseUrl: url,
        databaseAppUrl: appUrl,
        environment: "production",
        auth: { secret: "s".repeat(40), passwordCost: { ln: 11, r: 8, p: 1 } },
      }),
    ).toThrow(/OWASP/);
  });
});

describe("member listing", () => {
  it("refuses a sortBy or filterField that is not a member field with 400, not better-auth's 500", async () => {
    const owner = await signedInUser(sdk);
    const { headers } = await tenantOf(sdk, owner);
    for (const query of ["filterField=..&filterValue=x", "sortBy=..", "filterField=password&filterValue=x"]) {
      const res = await app.request(`/api/auth/organization/list-members?${query}`, { headers });
      expect(res.status, query).toBe(400);
      expect(((await res.json()) as { code: string }).code, query).toMatch(/^INVALID_(SORT|FILTER)_FIELD$/);
    }
    const listed = await app.request("/api/auth/organization/list-members?filterField=role&filterValue=owner", {
      headers,
    });
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { members: unknown[] }).members).toHaveLength(1);
  });
});
