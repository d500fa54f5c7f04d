/**
 * `sv-sdk/testing/vitest`: the test database as a vitest global setup, and its URLs in tests, typed.
 *
 * @example
 * // vitest.config.ts
 * export default defineConfig({ test: { globalSetup: ["./vitest.setup.ts"] } });
 * // vitest.setup.ts
 * import { testDatabaseSetup } from "sv-sdk/testing/vitest";
 * export default testDatabaseSetup({ migrations: { folder: "./drizzle", schemas: ["billing"] } });
 * // invoice.test.ts
 * const sdk = createTestSdk(testDatabase());
 */
import { inject } from "vitest";
import type { TestProject } from "vitest/node";
import type { AppMigrations } from "../db/migrate.js";
import { startTestDatabase } from "./database.js";

/** The test database's URLs, as the global setup provides them. */
export interface ProvidedTestDatabase {
  /** Owner URL of the shared, rolled-back test database. */
  url: string;
  /** The sv_app login's URL: what SDKs under test connect with. */
  appUrl: string;
  /** With `template`, what `createIsolatedDatabase` clones from. */
  adminUrl: string;
  template: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    svTestDatabase: ProvidedTestDatabase;
  }
}

export interface TestDatabaseSetupOptions {
  /** Your drizzle-kit migrations, applied to the template after sv-sdk's. */
  migrations?: AppMigrations;
  /** A PostgreSQL server to use instead of an embedded one (default: TEST_DATABASE_URL, if set). */
  externalUrl?: string;
}

/**
 * A vitest `globalSetup`: one PostgreSQL for the run (embedded unless TEST_DATABASE_URL is set), a
 * template migrated once with sv-sdk's migrations and yours, and a shared database cloned from it.
 * Tests read its URLs with `testDatabase()`; the teardown stops it.
 */
export function testDatabaseSetup(options: TestDatabaseSetupOptions = {}) {
  return async function setup(project: TestProject): Promise<() => Promise<void>> {
    const db = await startTestDatabase({
      ...options,
      externalUrl: options.externalUrl ?? process.env.TEST_DATABASE_URL,
    });
    project.provide("svTestDatabase", { url: db.url, appUrl: db.appUrl, adminUrl: db.adminUrl, template: db.template });
    return () => db.stop();
  };
}

/** In a test file: the URLs `testDatabaseSetup` provided (for `createTestSdk`, `createIsolatedDatabase`). */
export function testDatabase(): ProvidedTestDatabase {
  return inject("svTestDatabase");
}
