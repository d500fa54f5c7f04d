/**
 * Shared set-up for this repository's tests: an SDK and app on the shared test database, an owner
 * connection for assertions that must see past row-level security, and signed-in users.
 */
import { randomUUID } from "node:crypto";
import postgres from "postgres";
import { afterAll, inject } from "vitest";
import { createApp, type AppOptions } from "../src/app.js";
import { createSdk, type Sdk, type SdkOptions } from "../src/index.js";
import { TEST_ONLY_SCRYPT } from "../src/modules/auth/index.js";

/** SDK options for tests: cheap password hashing and no rate limiting (tests that need it opt in). */
export function testSdkOptions(url: string, options: Partial<SdkOptions> = {}): SdkOptions {
  return {
    databaseUrl: url,
    environment: "test",
    ...options,
    auth: { passwordCost: TEST_ONLY_SCRYPT, rateLimit: false, ...options.auth },
  };
}

export function useTestSdk(options: Partial<SdkOptions> = {}, appOptions: AppOptions = {}) {
  const { url } = inject("svTestDatabase");
  const sdk = createSdk(testSdkOptions(url, options));
  const app = createApp(sdk, { logRequests: false, ...appOptions });
  const owner = postgres(url, { max: 2, onnotice: () => {} });
  afterAll(async () => {
    await sdk.close();
    await owner.end({ timeout: 5 });
  });
  return { sdk, app, owner };
}

/** The origin browsers send with cookie requests in tests (the SDK's default base URL). */
export const TEST_ORIGIN = "http://localhost:3000";

/** JSON request init for `app.request`. */
export function json(method: string, body: unknown, headers: Record<string, string> = {}): RequestInit {
  return { method, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) };
}

export interface SignedInUser {
  user: { id: string; email: string; name: string };
  password: string;
  /** Cookie header of the session (as a browser would send it). */
  cookie: string;
  /** Bearer token of the same session (as a mobile app or script would send it). */
  token: string;
  /** Request headers with the session cookie (and `X-Tenant-Id` when a tenant was given). */
  headers: Record<string, string>;
}

/** `Set-Cookie` lines as a `Cookie` request header. */
export function cookieHeader(headers: Headers): string {
  return headers
    .getSetCookie()
    .map((line) => line.split(";")[0]!)
    .filter((pair) => !pair.endsWith("="))
    .join("; ");
}

/**
 * Creates a verified user and signs them in through the SDK (inside the ambient unit of work, so a
 * rollback fixture removes them again).
 */
export async function signedInUser(sdk: Sdk, input: { email?: string; name?: string; password?: string } = {}): Promise<SignedInUser> {
  const email = input.email ?? `user-${randomUUID()}@example.test`;
  const password = input.password ?? "correct horse battery staple";
  const name = input.name ?? "Test User";
  const user = await sdk.auth.createUser({ email, password, name, emailVerified: true });
  const signIn = await sdk.auth.api.signInEmail({ body: { email, password }, returnHeaders: true });
  const cookie = cookieHeader(signIn.headers);
  const token = signIn.headers.get("set-auth-token") ?? signIn.response.token;
  return { user: { id: user.id, email, name }, password, cookie, token, headers: { cookie, origin: TEST_ORIGIN } };
}

/**
 * Creates a tenant (organization) owned by `owner`, and returns headers that act in it.
 */
export async function tenantOf(sdk: Sdk, owner: SignedInUser, name = `Tenant ${randomUUID().slice(0, 8)}`) {
  const org = await sdk.auth.api.createOrganization({
    body: { name, slug: `t-${randomUUID()}` },
    headers: new Headers({ cookie: owner.cookie }),
  });
  if (!org) throw new Error("organization was not created");
  return { tenant: { id: org.id, name }, headers: { ...owner.headers, "x-tenant-id": org.id } };
}
