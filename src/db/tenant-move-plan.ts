/**
 * Planning a tenant move: which tables hold a tenant's rows (discovered from the catalog, parents
 * before children), how references to platform rows are translated on the target, and the
 * order-independent checksum both sides are compared with.
 */
import type postgres from "postgres";
import type { ModuleCatalog } from "./module.js";

/**
 * What the modules declare decides what moves (src/db/module.ts): tables of kind `tenant` move with
 * their tenant — except `derived` ones (caches: not copied, the target computes them afresh, so a
 * move back never compares a stale copy) and `staysWhereWritten` ones (a sealed trail: its seals
 * are bound to the writing cluster's transaction ids; reads visit every database). Control-plane
 * tables never move; the rows the moved rows reference are copied to the target beside them.
 */

/** `usage`: the request cannot be carried out as given (exit 2); `failure`: it went wrong (exit 1). */
export class TenantMoveError extends Error {
  constructor(
    message: string,
    readonly kind: "usage" | "failure" = "failure",
  ) {
    super(message);
    this.name = "TenantMoveError";
  }
}

export interface ForeignKey {
  column: string;
  references: string;
  refColumn: string;
}

export interface TablePlan {
  /** `schema.table`, quoted for SQL in `sql`. */
  name: string;
  sql: string;
  schema: string;
  columns: string[];
  primaryKey: string[];
  identity: string[];
  /** `where` clause over alias `t`, `$1` = tenant id. */
  filter: string;
  /** Foreign keys to control-plane tables: referenced rows are copied to the target first. */
  controlPlaneRefs: ForeignKey[];
  /** A cache: not copied (the target computes it afresh), removed from the source with the rest. */
  derived: boolean;
  /** Foreign keys to tenant-scoped tables whose referenced row may be a platform row. */
  remapped: ForeignKey[];
}

export const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;
export const qualified = (name: string) => name.split(".").map(ident).join(".");

/** Tables holding a tenant's rows, in an order that copies parents before children; `derived` lists the caches removed, not copied. */
export async function planTables(sql: postgres.Sql, catalog: ModuleCatalog): Promise<TablePlan[]> {
  const TENANT_SCHEMAS = [...catalog.tenantSchemas];
  const CONTROL_PLANE = new Set(catalog.controlPlaneSchemas);
  const kindOf = (table: string) => catalog.tables.get(table);
  const tables = await sql<
    { name: string; schema: string; columns: string[]; pk: string[] | null; identity: string[] }[]
  >`
    select n.nspname || '.' || c.relname as name, n.nspname as schema,
           array(select a.attname::text from pg_attribute a
                  where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped order by a.attnum) as columns,
           (select array(select a.attname::text from unnest(i.indkey) with ordinality k(attnum, o)
                          join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum order by k.o)
              from pg_index i where i.indrelid = c.oid and i.indisunique and i.indpred is null and i.indexprs is null
             order by i.indisprimary desc, i.indexrelid limit 1) as pk,
           array(select a.attname::text from pg_attribute a
                  where a.attrelid = c.oid and a.attidentity <> '' and not a.attisdropped) as identity
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind in ('r', 'p') and not c.relispartition and n.nspname = any(${[...TENANT_SCHEMAS, ...CONTROL_PLANE]})
     order by 1`;
  const keys = await sql<{ table: string; column: string; references: string; refColumn: string; width: number }[]>`
    select cn.nspname || '.' || c.relname as table, rn.nspname || '.' || r.relname as references,
           (select attname::text from pg_attribute where attrelid = k.conrelid and attnum = k.conkey[1]) as column,
           (select attname::text from pg_attribute where attrelid = k.confrelid and attnum = k.confkey[1]) as "refColumn",
           cardinality(k.conkey) as width
      from pg_constraint k
      join pg_class c on c.oid = k.conrelid join pg_namespace cn on cn.oid = c.relnamespace
      join pg_class r on r.oid = k.confrelid join pg_namespace rn on rn.oid = r.relnamespace
     where k.contype = 'f' and k.conparentid = 0 and cn.nspname = any(${TENANT_SCHEMAS})`;
  const byName = new Map(tables.map((t) => [t.name, t]));
  const scoped = new Set(
    tables.filter((t) => !CONTROL_PLANE.has(t.schema) && t.columns.includes("tenant_id")).map((t) => t.name),
  );
  const keysOf = (table: string) => keys.filter((k) => k.table === table);

  const plans: TablePlan[] = [];
  for (const t of tables) {
    const declared = kindOf(t.name);
    if (CONTROL_PLANE.has(t.schema) || declared?.kind !== "tenant" || declared.staysWhereWritten) continue;
    const parents = keysOf(t.name).filter((k) => scoped.has(k.references));
    let filter: string;
    if (scoped.has(t.name)) filter = `t.tenant_id = $1`;
    else if (parents.length > 0) {
      // A row without a tenant column belongs to the tenant when it points at one of the tenant's rows.
      filter = parents
        .map(
          (k) =>
            `t.${ident(k.column)} in (select p.${ident(k.refColumn)} from ${qualified(k.references)} p where p.tenant_id = $1)`,
        )
        .join(" or ");
    } else continue;
    // The primary key, or else a unique key (a cache keyed by its columns): the copy walks it in order.
    if (!t.pk?.length)
      throw new TenantMoveError(`${t.name} has no primary or unique key: its rows cannot be copied resumably`);
    for (const k of keysOf(t.name)) {
      if (k.width !== 1)
        throw new TenantMoveError(`${t.name}: multi-column foreign keys are not supported by tenant moves`);
    }
    plans.push({
      name: t.name,
      sql: qualified(t.name),
      schema: t.schema,
      columns: t.columns,
      primaryKey: t.pk,
      identity: t.identity,
      filter: `(${filter})`,
      controlPlaneRefs: keysOf(t.name).filter((k) => CONTROL_PLANE.has(byName.get(k.references)?.schema ?? "")),
      derived: declared.derived === true,
      remapped: parents.filter((k) => k.references !== t.name && k.refColumn === "id"),
    });
  }

  // Parents first (depth-first over the foreign keys between moved tables), derived tables last.
  const ordered: TablePlan[] = [];
  const visit = (plan: TablePlan, path: Set<string>) => {
    if (ordered.includes(plan) || path.has(plan.name)) return;
    path.add(plan.name);
    for (const k of keysOf(plan.name)) {
      const parent = plans.find((p) => p.name === k.references);
      if (parent && parent !== plan) visit(parent, path);
    }
    ordered.push(plan);
  };
  for (const plan of plans) visit(plan, new Set());
  return ordered;
}

/**
 * Source platform-row id → target id, per referenced table, matched on the unique key that includes
 * tenant_id (for roles: the name). Fails when a platform row the tenant's rows reference is missing
 * on the target.
 */
export async function platformRowMaps(
  plans: TablePlan[],
  source: postgres.Sql,
  target: postgres.Sql,
  tenantId: string,
) {
  const maps = new Map<string, Record<string, string>>();
  const referenced = [...new Set(plans.flatMap((p) => p.remapped.map((k) => k.references)))];
  for (const table of referenced) {
    // The platform rows the tenant's rows point at (none for most tables: only those need a match).
    const used = new Set<string>();
    for (const plan of plans) {
      for (const k of plan.remapped.filter((r) => r.references === table)) {
        const rows = await source.unsafe<{ id: string }[]>(
          `select distinct r.id::text as id from ${plan.sql} t
             join ${qualified(table)} r on r.id = t.${ident(k.column)} and r.tenant_id is null where ${plan.filter}`,
          [tenantId],
        );
        for (const r of rows) used.add(r.id);
      }
    }
    if (used.size === 0) continue;
    const [unique] = await target<{ columns: string[] }[]>`
      select array(select a.attname::text from unnest(k.conkey) c(attnum)
                     join pg_attribute a on a.attrelid = k.conrelid and a.attnum = c.attnum) as columns
        from pg_constraint k
       where k.conrelid = ${table}::regclass and k.contype = 'u'
         and exists (select 1 from pg_attribute a where a.attrelid = k.conrelid and a.attname = 'tenant_id' and a.attnum = any(k.conkey))`;
    const natural = (unique?.columns ?? []).filter((c) => c !== "tenant_id");
    if (natural.length === 0)
      throw new TenantMoveError(`${table} has no unique key with tenant_id to match platform rows by`);
    const query = `select r.id::text as id, jsonb_build_array(${natural.map((c) => `r.${ident(c)}`).join(", ")})::text as key
                     from ${qualified(table)} r where r.tenant_id is null`;
    const onTarget = new Map((await target.unsafe<{ id: string; key: string }[]>(query)).map((r) => [r.key, r.id]));
    const map: Record<string, string> = {};
    const missing: string[] = [];
    for (const row of await source.unsafe<{ id: string; key: string }[]>(query)) {
      if (!used.has(row.id)) continue;
      const id = onTarget.get(row.key);
      if (id) map[row.id] = id;
      else missing.push(row.key);
    }
    if (missing.length > 0) {
      throw new TenantMoveError(
        `the target lacks platform rows of ${table} the tenant uses (${missing.join(", ")}): run \`sv-sdk seed\` against it first`,
      );
    }
    maps.set(table, map);
  }
  return maps;
}

/**
 * The row as it must appear on the target: its jsonb, with platform references translated. The maps
 * it uses are parameters $2, $3 … (`values`), after the tenant id.
 */
export function projection(
  plan: TablePlan,
  maps: Map<string, Record<string, string>>,
): { expr: string; values: string[] } {
  const remapped = plan.remapped.filter((k) => maps.has(k.references));
  if (remapped.length === 0) return { expr: "to_jsonb(t)", values: [] };
  const values: string[] = [];
  const overrides = remapped.map((k) => {
    values.push(JSON.stringify(maps.get(k.references)));
    const c = `t.${ident(k.column)}`;
    return `'${k.column}', coalesce($${values.length + 1}::text::jsonb ->> ${c}::text, ${c}::text)`;
  });
  return { expr: `(to_jsonb(t) || jsonb_build_object(${overrides.join(", ")}))`, values };
}

/**
 * The online cutover's check, cheap enough to run while the tenant's writes wait: the row count and the
 * XOR of a 64-bit hash of every row (order-independent, no sort). The hash is hash_record_extended —
 * each column's own hash function over its binary value, ~3x faster than hashing the row's text (300k
 * rows: 150 ms against 450 ms) — or the row's text where a column type has no hash function. XOR, not
 * sum: `sum` of bigint accumulates in numeric (1M rows: 0.48 s against 0.66 s), and rows carry their
 * primary key, so no two rows of a table are alike and none cancel out. Not a cryptographic digest: it
 * catches a missing, extra or different row, which is what a copy gets wrong. Both sides run the same
 * migrations, so their columns are in the same order.
 */
export async function rowsHash(sql: postgres.Sql, plan: TablePlan, tenantId: string) {
  const query = (hash: string) =>
    sql.unsafe<{ rows: number; checksum: string }[]>(
      `select count(*)::int as rows, coalesce(bit_xor(${hash}), 0)::text as checksum from ${plan.sql} t where ${plan.filter}`,
      [tenantId],
    );
  try {
    return (await query("hash_record_extended(t, 0)"))[0]!;
  } catch (error) {
    // 42883: a column type without an extended hash function.
    if ((error as { code?: string }).code !== "42883") throw error;
    return (await query("hashtextextended(t::text, 0)"))[0]!;
  }
}

export async function checksum(sql: postgres.Sql, plan: TablePlan, rowExpr: string, params: unknown[]) {
  const [row] = await sql.unsafe<{ rows: number; checksum: string }[]>(
    `select count(*)::int as rows, coalesce(md5(string_agg(h, '' order by h)), md5('')) as checksum
       from (select md5(${rowExpr}::text) as h from ${plan.sql} t where ${plan.filter}) q`,
    params as never[],
  );
  return row!;
}
