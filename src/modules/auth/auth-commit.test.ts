/**
 * Auth behaviour that needs real commits: concurrency, failure injection, a served JWKS, and
 * revocation seen by a second instance. Each runs on its own databases cloned from the templates, in
 * the run's topology (SV_TOPOLOGY).
 */
import { randomUUID } from "node:crypto";
import { serve } from "@hono/node-server";
import { createRemoteJWKSet, jwtVerify } from "jose";
import type postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  cookieHeader,
  createIsolatedTopology,
  json,
  TEST_ORIGIN,
  cheapHashingTestSdkOptions,
  type IsolatedTopology,
} from "../../../test/support.js";
import { createApp } from "../../app.js";
import { freePort } from "../../db/embedded.js";
import { createSdk, type Sdk } from "../../index.js";

let db: IsolatedTopology;
let sdk: Sdk;
let app: ReturnType<typeof createApp>;
let owner: postgres.Sql;

// Instances of one deployment share BETTER_AUTH_SECRET.
const secret = randomUUID() + randomUUID();

beforeAll(async () => {
  db = await createIsolatedTopology();
  sdk = createSdk(cheapHashingTestSdkOptions(db.main, { ...db.placement, auth: { secret } }));
  app = createApp(sdk, { logRequests: false });
  owner = db.owner;
});
afterAll(async () => {
  await sdk.close();
  await db.drop();
});

const signUp = (email: string) =>
  app.request(
    "/api/auth/sign-up/email",
    json("POST", { email, password: "correct horse battery staple", name: "Ada" }),
  );

/** Rows mentioning this email or its user, in all four schemas (audit's on its own database in audit-split). */
async function footprint(email: string) {
  const [row] = await owner<{ users: number; accounts: number; roles: number; mail: number }[]>`
    select
      (select count(*)::int from auth.users where email = ${email}) as users,
      (select count(*)::int from auth.accounts a join auth.users u on u.id = a.user_id where u.email = ${email}) as accounts,
      (select count(*)::int from permissions.user_roles r join auth.users u on u.id = r.user_id where u.email = ${email}) as roles,
      (select count(*)::int from email.email_sends where to_address = ${email}) as mail`;
  const [audit] = await db.ownerSqlFor("audit")<{ n: number }[]>`
    select count(*)::int as n from audit.audit_logs where action = 'user.signed_up' and metadata->>'email' = ${email}`;
  return { ...row!, audit: audit!.n };
}

describe("sign-up is one unit of work", () => {
  it("gives 20 parallel sign-ups with one email exactly one user, and no 5xx", async () => {
    const email = `race-${randomUUID()}@example.test`;
    const responses = await Promise.all(Array.from({ length: 20 }, () => signUp(email)));
    const statuses = responses.map((r) => r.status);
    expect(statuses.every((s) => s < 500)).toBe(true);
    // Rate limits are on (10 sign-ups a minute per client): the rest are refused before they race.
    expect(statuses.filter((s) => s >= 400).every((s) => s === 422 || s === 429)).toBe(true);
    expect(statuses.filter((s) => s === 200 || s === 422).length).toBeGreaterThanOrEqual(2);
    for (const r of responses.filter((r) => r.status >= 400)) {
      expect(r.headers.get("content-type")).toContain("application/problem+json");
    }
    expect(await footprint(email)).toEqual({ users: 1, accounts: 1, roles: 1, audit: 1, mail: 1 });
  });

  const steps = [
    ["the user", "auth.users"],
    ["the account", "auth.accounts"],
    ["the default role", "permissions.user_roles"],
    ["the audit event", "audit.audit_logs"],
    ["the verification email", "email.email_sends"],
  ] as const;

  for (const [step, table] of steps) {
    it(`leaves no row anywhere when ${step} cannot be written`, async () => {
      const email = `fail-${randomUUID()}@example.test`;
      const trigger = `fail_${randomUUID().replaceAll("-", "")}`;
      // Failure injection in the real database (the one holding the table): this insert fails.
      const tableOwner = db.ownerSqlFor(table.split(".")[0]!);
      await tableOwner.unsafe(`
        create function public.${trigger}() returns trigger language plpgsql as $$
        begin raise exception 'injected failure on ${table}'; end $$;
        create trigger ${trigger} before insert on ${table} for each row execute function public.${trigger}();`);
      try {
        const res = await signUp(email);
        expect(res.status).toBeGreaterThanOrEqual(400);
        const body = await res.text();
        expect(body).not.toContain("injected failure");
        expect(body).not.toMatch(/at .*\.ts:\d+/);
      } finally {
        await tableOwner.unsafe(`drop trigger ${trigger} on ${table}; drop function public.${trigger}();`);
      }
      expect(await footprint(email)).toEqual({ users: 0, accounts: 0, roles: 0, audit: 0, mail: 0 });
    });
  }
});

describe("tokens for other services", () => {
  it("issues a JWT at /api/auth/token that verifies with jose against /api/auth/jwks over HTTP", async () => {
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const served = createSdk(cheapHashingTestSdkOptions(db.main, { ...db.placement, auth: { baseUrl, secret } }));
    const server = serve({ fetch: createApp(served, { logRequests: false }).fetch, port, hostname: "127.0.0.1" });
    try {
      const email = `jwt-${randomUUID()}@example.test`;
      await served.auth.createUser({
        email,
        password: "correct horse battery staple",
        name: "Jo",
        emailVerified: true,
      });
      const signIn = await fetch(
        `${baseUrl}/api/auth/sign-in/email`,
        json("POST", { email, password: "correct horse battery staple" }, { origin: baseUrl }),
      );
      expect(signIn.status).toBe(200);
      const tokenResponse = await fetch(`${baseUrl}/api/auth/token`, {
        headers: { cookie: cookieHeader(signIn.headers) },
      });
      expect(tokenResponse.status).toBe(200);
      const { token } = (await tokenResponse.json()) as { token: string };

      // Another service knows only the issuer's URL.
      const jwks = createRemoteJWKSet(new URL(`${baseUrl}/api/auth/jwks`));
      const { payload } = await jwtVerify(token, jwks, { issuer: baseUrl, audience: baseUrl });
      expect(payload.email).toBe(email);
      expect(payload.sub).toBeTruthy();

      const tampered = token.slice(0, -4) + (token.endsWith("AAAA") ? "BBBB" : "AAAA");
      await expect(jwtVerify(tampered, jwks, { issuer: baseUrl, audience: baseUrl })).rejects.toThrow();
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await served.close();
    }
  });
});

describe("revocation with the cookie cache on", () => {
  it("ends a signed-out session on another instance within a second, cookie cache or not", async () => {
    const other = createSdk(cheapHashingTestSdkOptions(db.main, { ...db.placement, auth: { secret } }));
    const otherApp = createApp(other, { logRequests: false });
    await other.auth.listen();
    try {
      const email = `rev-${randomUUID()}@example.test`;
      await sdk.auth.createUser({ email, password: "correct horse battery staple", name: "Rev", emailVerified: true });
      const signIn = await app.request(
        "/api/auth/sign-in/email",
        json("POST", { email, password: "correct horse battery staple" }),
      );
      const cookie = cookieHeader(signIn.headers);
      expect(cookie).toContain("session_data");
      expect((await otherApp.request("/api/v1/me", { headers: { cookie } })).status).toBe(200);

      expect(
        (await app.request("/api/auth/sign-out", { method: "POST", headers: { cookie, origin: TEST_ORIGIN } })).status,
      ).toBe(200);
      // The stolen full cookie (signed cache included) is refused on the other instance.
      const deadline = Date.now() + 1000;
      let status = 0;
      while (Date.now() < deadline) {
        status = (await otherApp.request("/api/v1/me", { headers: { cookie } })).status;
        if (status === 401) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(status).toBe(401);
    } finally {
      await other.close();
    }
  });
});

describe("rate limiting", () => {
  it("limits sign-in attempts per client across instances (stored in the database)", async () => {
    const servers = await Promise.all(
      [0, 1].map(async () => {
        const port = await freePort();
        const instance = createSdk(
          cheapHashingTestSdkOptions(db.main, { ...db.placement, auth: { secret, rateLimit: true } }),
        );
        const server = serve({ fetch: createApp(instance, { logRequests: false }).fetch, port, hostname: "127.0.0.1" });
        return { url: `http://127.0.0.1:${port}`, instance, server };
      }),
    );
    try {
      // Other tests of this file signed in from this address in the same minute.
      await owner`delete from auth.rate_limits`;
      const attempt = (url: string) =>
        fetch(
          `${url}/api/auth/sign-in/email`,
          json(
            "POST",
            { email: `nobody-${randomUUID()}@example.test`, password: "wrong password" },
            { origin: TEST_ORIGIN, "x-forwarded-for": `10.0.0.${Math.floor(Math.random() * 200)}` },
          ),
        ).then((r) => r.status);
      // Ten attempts a minute per client address, split over two instances; a forged
      // X-Forwarded-For does not make each attempt a new client.
      const statuses: number[] = [];
      for (let i = 0; i < 10; i++) statuses.push(await attempt(servers[i % 2]!.url));
      expect(statuses).toEqual(Array(10).fill(401));
      expect(await attempt(servers[0]!.url)).toBe(429);
      expect(await attempt(servers[1]!.url)).toBe(429);
    } finally {
      for (const { server, instance } of servers) {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await instance.close();
      }
    }
  });
});
