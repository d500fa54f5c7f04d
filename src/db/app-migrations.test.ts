/**
 * Your own migrations beside sv-sdk's (`sdk.migrate()`, `sv-sdk migrate --migrations`,
 * `startTestDatabase({ migrations })`): applied after sv-sdk's under the same lock, in a ledger of
 * their own, once; your schema opened to the runtime role; and one unit of work across both.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql as drizzleSql } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createSdk, type Sdk } from "../index.js";
import { createIsolatedDatabase, type IsolatedDatabase } from "../testing/database.js";
import { testSdkOptions } from "../testing/factories.js";
import { describeMigration } from "./migrate.js";

let folder: string;
let database: IsolatedDatabase;
let sdk: Sdk;
let owner: postgres.Sql;

/** A drizzle-kit migrations folder as `drizzle-kit generate` writes it: a journal and SQL files. */
async function writeMigrations(dir: string, files: { tag: string; sql: string }[]) {
  await mkdir(join(dir, "meta"), { recursive: true });
  const entries = files.map((f, idx) => ({
    idx,
    version: "7",
    when: 1_700_000_000_000 + idx,
    tag: f.tag,
    breakpoints: true,
  }));
  await writeFile(join(dir, "meta/_journal.json"), JSON.stringify({ version: "7", dialect: "postgresql", entries }));
  for (const f of files) await writeFile(join(dir, `${f.tag}.sql`), f.sql);
}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), "sv-sdk-app-migrations-"));
  // Timestamps older than every sv-sdk migration: a shared ledger would skip them.
  await writeMigrations(folder, [
    {
      tag: "0000_billing",
      sql: `CREATE SCHEMA "billing";--> statement-breakpoint
CREATE TABLE "billing"."invoices" ("id" serial PRIMARY KEY, "user_id" uuid NOT NULL REFERENCES "auth"."users"("id"), "amount_cents" integer NOT NULL);`,
    },
  ]);
  database = await createIsolatedDatabase(inject("svTestDatabase"));
  owner = postgres(database.url, { max: 1, onnotice: () => {} });
  sdk = createSdk(testSdkOptions(database, { migrations: { folder, schemas: ["billing"] } }));
});
afterAll(async () => {
  await sdk?.close();
  await owner?.end({ timeout: 5 });
  await database?.drop();
  await rm(folder, { recursive: true, force: true });
});

describe("your migrations beside sv-sdk's", () => {
  it("applies them once, after sv-sdk's, in a ledger of their own; a second run is up to date", async () => {
    const [first] = await sdk.migrate();
    expect(first!.appliedNow).toBe(first!.total);
    expect(first!.extra).toEqual([{ name: "yours", appliedBefore: 0, appliedNow: 1, total: 1 }]);
    expect(describeMigration(first!)).toMatch(
      /^main: up to date \(\d+\/\d+ migrations\); yours: applied 1 migration\(s\), now 1\/1$/,
    );
    const [second] = await sdk.migrate();
    expect(second!.extra).toEqual([{ name: "yours", appliedBefore: 1, appliedNow: 1, total: 1 }]);
    const [ledger] = await owner<{ count: number }[]>`select count(*)::int as count from drizzle.__app_migrations`;
    expect(ledger!.count).toBe(1);
    expect((await owner`select to_regclass('billing.invoices') as t`)[0]!.t).toBe("billing.invoices");
  });

  it("opens the schema to the runtime role, and one unit of work spans it and sv-sdk's modules", async () => {
    const email = `billing-${Date.now()}@example.test`;
    await expect(
      sdk.transaction(async () => {
        const user = await sdk.auth.createUser({ email, password: "correct horse battery staple", name: "Billing" });
        await sdk
          .db()
          .execute(drizzleSql`insert into billing.invoices (user_id, amount_cents) values (${user.id}, 1200)`);
        throw new Error("roll it all back");
      }),
    ).rejects.toThrow("roll it all back");
    expect(await owner`select 1 from auth.users where email = ${email}`).toHaveLength(0);

    const user = await sdk.transaction(async () => {
      const created = await sdk.auth.createUser({ email, password: "correct horse battery staple", name: "Billing" });
      await sdk
        .db()
        .execute(drizzleSql`insert into billing.invoices (user_id, amount_cents) values (${created.id}, 1200)`);
      return created;
    });
    const rows = await owner<
      { amount_cents: number }[]
    >`select amount_cents from billing.invoices where user_id = ${user.id}`;
    expect(rows).toEqual([{ amount_cents: 1200 }]);
    // The runtime login got the rights, and no more than sv_app's.
    const [rights] = await owner<{ insert: boolean; own: boolean }[]>`
      select has_table_privilege('sv_app', 'billing.invoices', 'INSERT') as insert,
             pg_has_role('sv_app', (select relowner from pg_class where oid = 'billing.invoices'::regclass), 'MEMBER') as own`;
    expect(rights).toEqual({ insert: true, own: false });
  });

  it("refuses to grant sv-sdk's own schemas whole, and names a missing schema", async () => {
    await expect(owner`select platform.grant_to_runtime('auth')`).rejects.toThrow(/auth is not a schema of yours/);
    await expect(owner`select platform.grant_to_runtime('nope')`).rejects.toThrow(/schema nope does not exist/);
  });

  it("names a folder without a journal instead of applying nothing", async () => {
    const bad = createSdk(testSdkOptions(database, { migrations: { folder: join(folder, "missing") } }));
    try {
      await expect(bad.migrate()).rejects.toThrow(/no drizzle migrations in .*missing: expected .*_journal\.json/);
    } finally {
      await bad.close();
    }
  });
});
