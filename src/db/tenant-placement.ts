/**
 * Placement as a policy: where a new tenant's rows go, decided once, before its first row is written.
 * A tenant is created on the topology's `tenants.defaultDatabase` (main unless set), or — asked for by
 * a caller allowed to — in a named database or a region of the topology. The choice is made (and
 * refused: unknown, not migrated) before anything is written; the placement row follows the tenant's
 * own control-plane row at once, before its first member (drizzle/0019: the runtime may place only a
 * tenant with no member and no placement yet), so every row of the tenant — the owner's role, its
 * audit event — is routed there.
 *
 * `main` is the default placement: each schema's rows where the topology puts them. It writes no
 * placement row (a tenant on main with a row would pull its tenant tables out of a split schema).
 */
import { sql } from "drizzle-orm";
import { defineErrors } from "../errors.js";
import { appliedMigrationCountOn, shippedMigrationCount } from "./migration-count.js";
import { PLACEMENTS_CHANNEL } from "./placements-memory.js";
import type { Router } from "./router.js";
import { regionOf } from "./topology.js";
import { declareCrossDatabaseUnit, type RequestContext } from "./unit-of-work.js";

/** Where a caller asks a new tenant to go: a region of the topology, a database of it, or both. */
export type PlacementRequest = NonNullable<RequestContext["requestedPlacement"]>;

/** Where a tenant lives: its database, and the region of the topology that database is in (or null). */
export interface TenantPlacement {
  database: string;
  region: string | null;
}

export const PlacementErrors = defineErrors({
  PLACEMENT_UNKNOWN: { status: 422, message: "The placement names no region or database of the topology" },
  PLACEMENT_NOT_MIGRATED: {
    status: 409,
    message: "The database asked for is not migrated: run `sv-sdk migrate` before placing tenants on it",
  },
});

/** The platform's side of tenant creation, as the module that defines tenants receives it. */
export interface TenantPlacements {
  /**
   * Where a new tenant goes: the request, else the topology's default. Refuses an unknown region or
   * database (422) and one that is not migrated (409); a database that cannot answer is a 503.
   */
  choose(request?: PlacementRequest): Promise<TenantPlacement>;
  /**
   * Records the placement of a tenant just created (its row exists, no member yet), in the ambient
   * unit of work. Nothing to record for main, the default placement.
   */
  place(tenantId: string, placement: TenantPlacement): Promise<void>;
  /** Where a tenant lives, as the ambient unit of work sees it (a placement not yet committed included). */
  placementOf(tenantId: string): Promise<TenantPlacement>;
}

/** Refuses a database whose migrations are behind the shipped ones (it would lack tables the tenant needs). */
async function requireMigrated(router: Router, database: string): Promise<void> {
  // On the router's handle: a unit already holding a connection there (a request in a tenant of
  // that database creating another tenant) asks on it, not for a second one.
  const applied = await appliedMigrationCountOn(router.database(database));
  const shipped = shippedMigrationCount();
  if (applied < shipped) {
    throw PlacementErrors.PLACEMENT_NOT_MIGRATED(
      { database, applied, shipped },
      `Database '${database}' is not migrated (${applied} of ${shipped} migrations): run \`sv-sdk migrate\` before placing tenants on it`,
    );
  }
}

/** `schema.table` as SQL. */
const quoted = (table: string) =>
  sql.raw(
    table
      .split(".")
      .map((part) => `"${part.replace(/"/g, '""')}"`)
      .join("."),
  );

export function createTenantPlacements(router: Router): TenantPlacements {
  const topology = router.topology;
  const main = () => router.database("main");

  /** The tenants each database holds: placement rows, and on main the tenants without one. */
  const loads = async (databases: string[]): Promise<Map<string, number>> => {
    const rows = await main().execute<{ database: string; n: number }>(
      sql`select database, count(*)::int as n from platform.tenant_placements group by database`,
    );
    const load = new Map(databases.map((d) => [d, 0]));
    for (const row of rows) if (load.has(row.database)) load.set(row.database, row.n);
    const tenants = router.catalog.tenantsTable;
    if (load.has("main") && tenants) {
      const [row] = await main().execute<{ n: number }>(
        sql`select count(*)::int as n from ${quoted(tenants)} t
             where not exists (select 1 from platform.tenant_placements p where p.tenant_id = t.id)`,
      );
      load.set("main", (load.get("main") ?? 0) + (row?.n ?? 0));
    }
    return load;
  };

  const unknown = (what: "region" | "database", name: string) =>
    PlacementErrors.PLACEMENT_UNKNOWN(
      { [what]: name, known: Object.keys(what === "region" ? topology.regions : topology.databases) },
      `The topology has no ${what} '${name}'`,
    );

  const chooseDatabase = async (request: PlacementRequest = {}): Promise<string> => {
    const { region, database } = request;
    if (database !== undefined && !topology.databases[database]) throw unknown("database", database);
    if (region === undefined) return database ?? topology.tenants.defaultDatabase;
    const members = Object.hasOwn(topology.regions, region) ? topology.regions[region]! : undefined;
    if (!members) throw unknown("region", region);
    if (database !== undefined) {
      if (!members.includes(database)) {
        throw PlacementErrors.PLACEMENT_UNKNOWN(
          { region, database, databases: members },
          `Database '${database}' is not in region '${region}' (${members.join(", ")})`,
        );
      }
      return database;
    }
    // The least loaded of the region's databases; ties go to the first listed.
    const load = await loads(members);
    return members.reduce((best, d) => (load.get(d)! < load.get(best)! ? d : best), members[0]!);
  };

  return {
    async choose(request) {
      const database = await chooseDatabase(request);
      if (database !== "main") await requireMigrated(router, database);
      return { database, region: regionOf(topology, database) };
    },
    async place(tenantId, placement) {
      if (placement.database === "main") return;
      // In a unit of work, even when called outside one (better-auth's member hook): the tenant is not
      // resident on its database until that unit commits, and a unit of its own entering it here would
      // go there by the placement just learnt and find it not resident.
      if (!router.inUnitOfWork()) return router.transaction(() => this.place(tenantId, placement));
      // The creation writes here (the organization, the placement) and there (its copy, the owner's
      // role, the first audit event). The nested commit there comes first; main's, last, is what
      // makes the tenant exist: a failure between them leaves rows no placement points at.
      declareCrossDatabaseUnit("a tenant created on a database of its own");
      // Running instances remember placements: they hear of this one at this unit's commit.
      await main().execute(
        sql`select platform.place_new_tenant(${tenantId}::uuid, ${placement.database}), pg_notify(${PLACEMENTS_CHANNEL}, ${tenantId})`,
      );
      router.placed(tenantId, placement.database);
      const tenants = router.catalog.tenantsTable;
      if (!tenants) return;
      // The tenant's own row goes where its rows go, for their keys to it (its id is all that matters
      // there: the copy is never updated). Entering the tenant joins its database to the unit of work,
      // so the copy commits or rolls back with the creation.
      const table = sql.raw(
        tenants
          .split(".")
          .map((part) => `"${part}"`)
          .join("."),
      );
      await router.withTenant(tenantId, async () => {
        const [copy] = await main().execute<{ rows: string | null }>(
          sql`select json_agg(r)::text as rows from ${table} r where r.id = ${tenantId}::uuid`,
        );
        await router
          .database(placement.database)
          .execute(
            sql`insert into ${table} select * from jsonb_populate_recordset(null::${table}, ${copy?.rows ?? "[]"}::jsonb) on conflict do nothing`,
          );
        // The database holds the tenant from this commit (drizzle/0024): routers enter it there.
        await router.database(placement.database).execute(sql`select platform.place_resident(${tenantId}::uuid)`);
      });
    },
    async placementOf(tenantId) {
      const [row] = await main().execute<{ database: string }>(
        sql`select database from platform.tenant_placements where tenant_id = ${tenantId}::uuid`,
      );
      const database = row?.database ?? "main";
      return { database, region: regionOf(topology, database) };
    },
  };
}
