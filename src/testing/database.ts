/**
 * Test databases: one real PostgreSQL (embedded, or the server at `externalUrl`), a template
 * database migrated once, a shared database cloned from it for rolled-back tests, and fresh clones for
 * tests that must really commit.
 *
 * Each comes with two URLs, as a deployment does: `url` logs in as the owner (migrations, assertions
 * that must see past row-level security) and `appUrl` as the `sv_app` login the SDK under test runs as.
 */
import { createHmac, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { startEmbeddedPostgres } from "../db/embedded.js";
import { migrateDatabase, type AppMigrations } from "../db/migrate.js";
import { RUNTIME_ROLE } from "../db/router.js";
import { createSdk } from "../sdk.js";

export interface TestDatabase {
  /** Owner URL of the shared test database (rolled-back tests run here). */
  url: string;
  /** The `sv_app` login's URL of the shared test database: what SDKs under test connect with. */
  appUrl: string;
  /** Owner URL of the server's maintenance database (creating and dropping clones). */
  adminUrl: string;
  /** Name of the migrated template database clones are made from. */
  template: string;
  stop(): Promise<void>;
}

const withDatabase = (url: string, database: string) => {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
};

/**
 * The `sv_app` login's URL of `database`. Its password is derived from the server's admin URL rather
 * than drawn at random: test runs sharing one TEST_DATABASE_URL server then set the same password and
 * never lock each other out. (A deployment's password is its own; see README, "Database roles".)
 */
function appUrlOf(adminUrl: string, database: string): string {
  const url = new URL(withDatabase(adminUrl, database));
  url.password = createHmac("sha256", `${url.username}:${decodeURIComponent(url.password)}@${url.host}`)
    .update("sv-sdk test runtime login")
    .digest("base64url");
  url.username = RUNTIME_ROLE;
  return url.toString();
}

async function admin<T>(adminUrl: string, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/**
 * Starts (or connects to) PostgreSQL, migrates a template database — sv-sdk's migrations, then yours
 * (`migrations`, as `sdk.migrate()` applies them) — and clones the shared test database from it, so
 * `withRollback` and `createIsolatedDatabase` see your tables too. Call once per test run (vitest
 * `globalSetup`; `sv-sdk/testing/vitest` has one ready).
 *
 * @example
 * const db = await startTestDatabase({ migrations: { folder: "./drizzle", schemas: ["billing"] } });
 * // ... db.url, db.appUrl; clones with createIsolatedDatabase(db)
 * await db.stop();
 */
export async function startTestDatabase(
  options: { externalUrl?: string; migrations?: AppMigrations } = {},
): Promise<TestDatabase> {
  const suffix = randomBytes(4).toString("hex");
  const template = `sv_template_${suffix}`;
  const shared = `sv_test_${suffix}`;
  let adminUrl: string;
  let stopServer = async () => {};

  const externalUrl = options.externalUrl;
  if (externalUrl) {
    adminUrl = withDatabase(externalUrl, "postgres");
  } else {
    const dataDir = await mkdtemp(join(tmpdir(), "sv-sdk-test-"));
    const embedded = await startEmbeddedPostgres({ dataDir, database: "postgres", persistent: false });
    adminUrl = embedded.url;
    stopServer = async () => {
      await embedded.stop();
      await rm(dataDir, { recursive: true, force: true });
    };
  }

  await admin(adminUrl, (sql) => sql.unsafe(`create database "${template}"`));
  // Migrating sets up the sv_app login, as on a real start-up; roles are cluster-wide, so every clone
  // has it.
  await migrateDatabase("main", withDatabase(adminUrl, template), {
    appUrl: appUrlOf(adminUrl, template),
    extra: options.migrations ? [options.migrations] : [],
  });
  // Built-in roles and default templates belong in the template, as on a real start-up.
  const seeder = createSdk({
    databaseUrl: withDatabase(adminUrl, template),
    databaseAppUrl: appUrlOf(adminUrl, template),
  });
  try {
    await seeder.seed();
  } finally {
    await seeder.close();
  }
  await admin(adminUrl, (sql) => sql.unsafe(`create database "${shared}" template "${template}"`));

  return {
    url: withDatabase(adminUrl, shared),
    appUrl: appUrlOf(adminUrl, shared),
    adminUrl,
    template,
    async stop() {
      if (externalUrl) {
        await admin(adminUrl, async (sql) => {
          await sql.unsafe(`drop database if exists "${shared}" with (force)`);
          await sql.unsafe(`drop database if exists "${template}" with (force)`);
        });
      }
      await stopServer();
    },
  };
}

export interface IsolatedDatabase {
  /** Owner URL. */
  url: string;
  /** The `sv_app` login's URL: what SDKs under test connect with. */
  appUrl: string;
  name: string;
  drop(): Promise<void>;
}

/**
 * A fresh database cloned from the migrated template, for work that must really commit (dispatchers,
 * LISTEN/NOTIFY, concurrency, several databases). Drop it when done.
 *
 * @example
 * const db = await createIsolatedDatabase(inject("svTestDatabase"));
 * const sdk = createSdk({ databaseUrl: db.url, databaseAppUrl: db.appUrl });
 * // ...
 * await sdk.close(); await db.drop();
 */
export async function createIsolatedDatabase(test: {
  adminUrl: string;
  template: string;
  appUrl: string;
}): Promise<IsolatedDatabase> {
  const name = `sv_iso_${randomBytes(6).toString("hex")}`;
  // Cloning needs the template to be idle; a clone started at the same moment by another worker
  // makes PostgreSQL refuse ("source database is being accessed"), so retry briefly.
  for (let attempt = 0; ; attempt++) {
    try {
      await admin(test.adminUrl, (sql) => sql.unsafe(`create database "${name}" template "${test.template}"`));
      break;
    } catch (error) {
      if (attempt >= 20 || (error as { code?: string }).code !== "55006") throw error;
      await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
    }
  }
  return {
    name,
    url: withDatabase(test.adminUrl, name),
    appUrl: withDatabase(test.appUrl, name),
    drop: () =>
      admin(test.adminUrl, (sql) => sql.unsafe(`drop database if exists "${name}" with (force)`)).then(() => {}),
  };
}
