/**
 * Shared set-up for this repository's tests, on top of `sv-sdk/testing` (src/testing.ts): an SDK and
 * app on the shared test database (running as its sv_app login), and an owner connection for
 * assertions that must see past row-level security; two databases for a tenant placed on one of its own.
 */
import postgres from "postgres";
import { afterAll, beforeAll, inject } from "vitest";
import { createApp, type AppOptions } from "../src/app.js";
import { parseTopology, type Topology } from "../src/db/topology.js";
import { createSdk, type Sdk, type SdkOptions } from "../src/index.js";
import { createIsolatedDatabase, type IsolatedDatabase } from "../src/testing/database.js";
import { cheapHashingTestSdkOptions, createTestTenant, createTestUser, type TestUser } from "../src/testing.js";

export {
  cheapHashingTestSdkOptions,
  cookieHeader,
  TEST_ORIGIN,
  testSdkOptions,
} from "../src/testing.js";
export type SignedInUser = TestUser;

export function useTestSdk(options: Partial<SdkOptions> = {}, appOptions: AppOptions = {}) {
  const database = inject("svTestDatabase");
  const sdk = createSdk(cheapHashingTestSdkOptions(database, options));
  const app = createApp(sdk, { logRequests: false, ...appOptions });
  const owner = postgres(database.url, { max: 2, onnotice: () => {} });
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

/** Two databases for tests of a tenant placed on a database of its own. */
export interface TwoDatabases {
  /** `main` (control plane and every other tenant) and `tenant_db`, cloned from the migrated template. */
  main: IsolatedDatabase;
  tenantDb: IsolatedDatabase;
  /** Owner connections, past row-level security. */
  mainSql: postgres.Sql;
  tenantSql: postgres.Sql;
  /** `{ main, tenant_db }` with their sv_app logins, parsed. */
  topology: Topology;
}

/**
 * Clones two databases before the file's tests (its own `beforeAll` hooks, registered after this
 * call, see them ready) and drops them after (its `afterAll` hooks run first: close SDKs there).
 */
export function useTwoDatabases(connection: Record<string, string> = {}): TwoDatabases {
  const databases = {} as TwoDatabases;
  beforeAll(async () => {
    const template = inject("svTestDatabase");
    const [main, tenantDb] = await Promise.all([createIsolatedDatabase(template), createIsolatedDatabase(template)]);
    Object.assign(databases, {
      main,
      tenantDb,
      mainSql: postgres(main.url, { max: 2, onnotice: () => {}, connection }),
      tenantSql: postgres(tenantDb.url, { max: 2, onnotice: () => {}, connection }),
      topology: parseTopology({
        databases: {
          main: { url: main.url, appUrl: main.appUrl },
          tenant_db: { url: tenantDb.url, appUrl: tenantDb.appUrl },
        },
      }),
    });
  }, 60_000);
  afterAll(async () => {
    await databases.mainSql?.end({ timeout: 5 });
    await databases.tenantSql?.end({ timeout: 5 });
    await databases.main?.drop();
    await databases.tenantDb?.drop();
  });
  return databases;
}
