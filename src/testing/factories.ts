/**
 * Factories for tests of code built on sv-sdk: an SDK configured for tests, users with a signed-in
 * session, tenants, roles. Everything they write goes through the SDK, so inside `withRollback` it is
 * rolled back with the rest of the test.
 */
import { randomUUID } from "node:crypto";
import { createSdk, type Sdk, type SdkOptions } from "../sdk.js";
import { TEST_ONLY_SCRYPT } from "../modules/auth/index.js";

/** The origin browsers send with cookie requests in tests (the SDK's default base URL). */
export const TEST_ORIGIN = "http://localhost:3000";

/**
 * A test database: the owner's URL, and the `sv_app` login's URL the SDK runs as (what
 * `inject("svTestDatabase")` and `createIsolatedDatabase` give).
 */
export interface TestDatabaseUrls {
  url: string;
  appUrl?: string;
}

/**
 * SDK options for tests, in the configuration production runs: rate limits on, the cookie cache on,
 * the OWASP password cost. Given a test database, the SDK runs as its `sv_app` login; given only a
 * URL (the older form), as that URL's user assuming sv_app — with a warning, since that is not a wall.
 *
 * @example
 * const sdk = createSdk(testSdkOptions(inject("svTestDatabase"), { email: { templates } }));
 */
export function testSdkOptions(database: string | TestDatabaseUrls, options: Partial<SdkOptions> = {}): SdkOptions {
  const { url, appUrl } = typeof database === "string" ? { url: database, appUrl: undefined } : database;
  return {
    databaseUrl: url,
    ...(appUrl ? { databaseAppUrl: appUrl } : {}),
    environment: "test",
    ...options,
    auth: { ...options.auth },
  };
}

/**
 * As `testSdkOptions`, with password hashing 64 times cheaper than production's: for suites that
 * create many users. Never for a test about passwords, hashing or sign-in under load.
 *
 * @example
 * const sdk = createSdk(cheapHashingTestSdkOptions(inject("svTestDatabase")));
 */
export function cheapHashingTestSdkOptions(
  database: string | TestDatabaseUrls,
  options: Partial<SdkOptions> = {},
): SdkOptions {
  const base = testSdkOptions(database, options);
  return { ...base, auth: { passwordCost: TEST_ONLY_SCRYPT, ...base.auth } };
}

/**
 * The options with auth rate limiting switched off: for a test that makes more sign-ins or sign-ups
 * over HTTP than a client may in a minute. Never for a test about rate limits, concurrency or faults.
 *
 * @example
 * const sdk = createSdk(withoutRateLimits(cheapHashingTestSdkOptions(inject("svTestDatabase"))));
 */
export function withoutRateLimits(options: SdkOptions): SdkOptions {
  return { ...options, auth: { ...options.auth, rateLimit: false } };
}

/**
 * An SDK for tests, as production runs it (see `testSdkOptions`).
 *
 * @example
 * const sdk = createTestSdk(inject("svTestDatabase"));
 * afterAll(() => sdk.close());
 */
export function createTestSdk(database: string | TestDatabaseUrls, options: Partial<SdkOptions> = {}): Sdk {
  return createSdk(testSdkOptions(database, options));
}

export interface TestUser {
  user: { id: string; email: string; name: string };
  password: string;
  /** Cookie header of the session (as a browser would send it). */
  cookie: string;
  /** Bearer token of the same session (as a mobile app or script would send it). */
  token: string;
  /** Request headers for `app.request`: the session cookie and a trusted Origin. */
  headers: Record<string, string>;
}

/** `Set-Cookie` lines as a `Cookie` request header (cleared cookies left out). */
export function cookieHeader(headers: Headers): string {
  return headers
    .getSetCookie()
    .map((line) => line.split(";")[0]!)
    .filter((pair) => !pair.endsWith("="))
    .join("; ");
}

/**
 * Creates a verified user and signs them in.
 *
 * @example
 * const ada = await createTestUser(sdk);
 * const res = await app.request("/api/v1/me", { headers: ada.headers });
 */
export async function createTestUser(
  sdk: Sdk,
  input: { email?: string; name?: string; password?: string } = {},
): Promise<TestUser> {
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
 * Creates a tenant (organization) owned by `owner` — who becomes its `owner` in permissions — and
 * returns headers that act in it.
 *
 * @example
 * const { tenant, headers } = await createTestTenant(sdk, ada);
 */
export async function createTestTenant(sdk: Sdk, owner: TestUser, name = `Tenant ${randomUUID().slice(0, 8)}`) {
  const org = await sdk.auth.api.createOrganization({
    body: { name, slug: `t-${randomUUID()}` },
    headers: new Headers({ cookie: owner.cookie }),
  });
  if (!org) throw new Error("the organization was not created");
  return { tenant: { id: org.id, name }, headers: { ...owner.headers, "x-tenant-id": org.id } };
}

/**
 * Creates a role holding `permissions` (in `tenant`, or global) and assigns it to `user`.
 *
 * @example
 * await createTestRole(sdk, { permissions: ["invoices:write"], assignTo: ada.user.id, tenant });
 */
export async function createTestRole(
  sdk: Sdk,
  input: { permissions: string[]; assignTo?: string; tenant?: string | null; name?: string },
) {
  const scope = { tenant: input.tenant ?? null };
  const role = await sdk.permissions.createRole(
    { name: input.name ?? `role-${randomUUID().slice(0, 8)}`, permissions: input.permissions },
    scope,
  );
  if (input.assignTo) await sdk.permissions.assignRole(input.assignTo, role.id, scope);
  return role;
}

/**
 * Makes `user` a member of `tenant` with an organization role (`member`, `admin` or `owner`), as an
 * accepted invitation would; the role is mirrored into permissions.
 *
 * @example
 * await addTestMember(sdk, tenant.id, bob.user.id, "member");
 */
export async function addTestMember(
  sdk: Sdk,
  tenantId: string,
  userId: string,
  role: "member" | "admin" | "owner" = "member",
) {
  await sdk.auth.api.addMember({ body: { userId, organizationId: tenantId, role } });
}
