/**
 * Shared set-up for this repository's tests, on top of `sv-sdk/testing` (src/testing.ts): an SDK and
 * app on the shared test database, and an owner connection for assertions that must see past
 * row-level security.
 */
import postgres from "postgres";
import { afterAll, inject } from "vitest";
import { createApp, type AppOptions } from "../src/app.js";
import { createSdk, type Sdk, type SdkOptions } from "../src/index.js";
import { createTestTenant, createTestUser, testSdkOptions, type TestUser } from "../src/testing.js";

export { cookieHeader, TEST_ORIGIN, testSdkOptions } from "../src/testing.js";
export type SignedInUser = TestUser;

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

/** JSON request init for `app.request`. */
export function json(method: string, body: unknown, headers: Record<string, string> = {}): RequestInit {
  return { method, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) };
}

/** A verified, signed-in user (sv-sdk/testing's createTestUser). */
export const signedInUser = (sdk: Sdk, input?: Parameters<typeof createTestUser>[1]) => createTestUser(sdk, input);

/** A tenant owned by `owner` (sv-sdk/testing's createTestTenant). */
export const tenantOf = (sdk: Sdk, owner: TestUser, name?: string) => createTestTenant(sdk, owner, name);
