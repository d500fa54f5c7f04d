/**
 * The tenants of a deployment with their placement, read as an operator does (owner connection to the
 * control plane): what `sv-sdk tenants` lists and how `sv-sdk tenant:export` finds a tenant by id or
 * slug. The tenants table is the one a module's descriptor declares (`tenants`); its `name` and `slug`
 * columns are shown when it has them.
 */
import type postgres from "postgres";
import type { ModuleCatalog } from "./module.js";
import { qualified } from "./tenant-move-plan.js";
import { regionOf, type Topology } from "./topology.js";
import { UUID } from "../uuid.js";

export interface TenantListing {
  id: string;
  name: string | null;
  slug: string | null;
  /** Where its rows live (`main`: the default placement). */
  database: string;
  region: string | null;
  state: "active" | "moving";
}

/** Every tenant (or the one whose id or slug is `tenant`), ordered by name, then id. */
export async function listTenants(
  main: postgres.Sql,
  catalog: ModuleCatalog,
  topology: Topology,
  tenant?: string,
): Promise<TenantListing[]> {
  if (!catalog.tenantsTable) return [];
  const byId = tenant !== undefined && UUID.test(tenant);
  const rows = await main.unsafe<
    { id: string; name: string | null; slug: string | null; database: string | null; state: string | null }[]
  >(
    `select t.id::text as id, to_jsonb(t) ->> 'name' as name, to_jsonb(t) ->> 'slug' as slug, p.database, p.state
       from ${qualified(catalog.tenantsTable)} t left join platform.tenant_placements p on p.tenant_id = t.id
      where $1::text is null or ${byId ? "t.id = $1::uuid" : "to_jsonb(t) ->> 'slug' = $1"}
      order by 2 nulls last, 1`,
    [tenant ?? null],
  );
  return rows.map((r) => {
    const database = r.database ?? "main";
    return {
      id: r.id,
      name: r.name,
      slug: r.slug,
      database,
      region: regionOf(topology, database),
      state: r.state === "moving" ? "moving" : "active",
    };
  });
}
