/**
 * Shared set-up for this repository's tests: an SDK and app on the shared test database, and an
 * owner connection for assertions that must see past row-level security.
 */
import postgres from "postgres";
import { afterAll, inject } from "vitest";
import { createApp, type AppOptions } from "../src/app.js";
import { createSdk, type SdkOptions } from "../src/index.js";

export function useTestSdk(options: Partial<SdkOptions> = {}, appOptions: AppOptions = {}) {
  const { url } = inject("svTestDatabase");
  const sdk = createSdk({ databaseUrl: url, environment: "test", ...options });
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
