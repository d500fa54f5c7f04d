/**
 * Where the email module's rows live once tenants may have databases of their own (placement.ts):
 * sends (with their webhook events and development messages) and tenant templates follow their
 * tenant, so `router.db("email")` inside a tenant's unit of work is that tenant's database; the
 * suppression list and preferences are one list per deployment and always live in the email schema's
 * database. Platform work (dispatching, webhooks, operator reads) visits every database.
 */
import type { Router } from "../../db/router.js";

export function createEmailDatabases(router: Router) {
  const home = router.databaseOf("email");
  // Most rows live in the email schema's database: look there first.
  const all = () => [home, ...router.databases().filter((database) => database !== home)];
  const asPlatformOn = <T>(database: string, fn: () => Promise<T>) => router.onDatabase(database, () => router.withTenant("*", fn));

  return {
    /** The email schema's database. */
    home,
    /** Suppressions and preferences: the email schema's database whatever the tenant, joined to the unit of work. */
    schemaDb: router.database(home),
    /** Every database that may hold sends, the email schema's first. */
    all,
    /** Runs `fn` as platform work (every tenant's rows) with the email handles pinned to `database`. */
    asPlatformOn,
    /** Runs `fn` as platform work on each database in turn until it finds something; undefined when none does. */
    async findInAny<T>(fn: () => Promise<T | undefined>): Promise<{ database: string; found: T } | undefined> {
      for (const database of all()) {
        const found = await asPlatformOn(database, fn);
        if (found !== undefined) return { database, found };
      }
      return undefined;
    },
  };
}

export type EmailDatabases = ReturnType<typeof createEmailDatabases>;
