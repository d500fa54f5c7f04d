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
import { shippedMigrationCount } from "./migrate.js";
import type { Router } from "./router.js";
import type { Database } from "./unit-of-work.js";

/** Where a caller asks a new tenant to go: a region of the topology, a database of it, or both. */
export interface PlacementRequest {
  region?: string;
  database?: string;
}

/** Where a tenant lives. */
export interface TenantPlacement {
  database: string;
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
async function requireMigrated(db: Database, database: string): Promise<void> {
  const [ledger] = await db.execute<{ present: boolean }>(
    sql`select to_regclass('drizzle.__drizzle_migrations') is not null as present`,
  );
  let applied = 0;
  if (ledger?.present) {
    const [row] = await db.execute<{ n: number }>(sql`select count(*)::int as n from drizzle.__drizzle_migrations`);
    applied = row?.n ?? 0;
  }
  const shipped = shippedMigrationCount();
  if (applied < shipped) {
    throw PlacementErrors.PLACEMENT_NOT_MIGRATED(
      { database, applied, shipped },
      `Database '${database}' is not migrated (${applied} of ${shipped} migrations): run \`sv-sdk migrate\` before placing tenants on it`,
    );
  }
}

export function createTenantPlacements(router: Router): TenantPlacements {
  const topology = router.topology;
  const main = () => router.database("main");

  const chooseDatabase = (request: PlacementRequest = {}): string => {
    if (request.region !== undefined) {
      throw PlacementErrors.PLACEMENT_UNKNOWN(
        { region: request.region },
        `The topology has no region '${request.region}'`,
      );
    }
    const database = request.database ?? topology.tenants.defaultDatabase;
    if (!topology.databases[database]) {
      throw PlacementErrors.PLACEMENT_UNKNOWN(
        { database, databases: Object.keys(topology.databases) },
        `The topology has no database '${database}'`,
      );
    }
    return database;
  };

  return {
    async choose(request) {
      const database = chooseDatabase(request);
      if (database !== "main") await requireMigrated(router.database(database), database);
      return { database };
    },
    async place(tenantId, placement) {
      if (placement.database === "main") return;
      await main().execute(sql`select platform.place_new_tenant(${tenantId}::uuid, ${placement.database})`);
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
      });
    },
    async placementOf(tenantId) {
      const [row] = await main().execute<{ database: string }>(
        sql`select database from platform.tenant_placements where tenant_id = ${tenantId}::uuid`,
      );
      return { database: row?.database ?? "main" };
    },
  };
}
