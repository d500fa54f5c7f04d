/**
 * Planning a tenant move: which tables hold a tenant's rows (discovered from the catalog, parents
 * before children), how references to platform rows are translated on the target, and the
 * order-independent checksum both sides are compared with.
 */
import type postgres from "postgres";
import { MODULES } from "./topology.js";

/** The schemas whose rows belong to tenants; `auth` is the control plane and never moves. */
export const TENANT_SCHEMAS = MODULES.filter((m) => m !== "auth");
/**
 * Derived from the grant tables: triggers on those recompute it, so it is copied after them (a copy
 * made before would be rewritten on the target behind the checksum).
 */
const COPIED_LAST = new Set(["permissions.permission_cache"]);
/**
 * The audit trail is not copied: a tenant's events stay sealed in the database that wrote them, and
 * the events written after the move are sealed where the tenant lives then (the audit module reads,
 * seals and verifies every database of the topology). Copies cannot be sealed honestly: a row's
 * `txid` and a seal's txid range are transaction ids of the source's cluster, meaningless in the
 * target's, so copied rows the source had not sealed yet sit below the target's sealing frontier
 * and its verify reports them as slipped into sealed history; copied seals also collide with the
 * target's own seal ids (the copy then fails its checksum and the tenant stays 'moving'). And a
 * trail held twice would be counted twice by every platform-wide read.
 */
const STAYS_WHERE_WRITTEN = new Set(["audit"]);

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
  /** Foreign keys to auth tables: referenced rows are copied to the target first. */
  authRefs: ForeignKey[];
  /** Foreign keys to tenant-scoped tables whose referenced row may be a platform row. */
  remapped: ForeignKey[];
}

export const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;
export const qualified = (name: string) => name.split(".").map(ident).join(".");

/** Tables holding a tenant's rows, in an order that copies parents before children. */
export async function planTables(sql: postgres.Sql): Promise<TablePlan[]> {
  const tables = await sql<{ name: string; schema: string; columns: string[]; pk: string[] | null; identity: string[] }[]>`
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
     where c.relkind in ('r', 'p') and not c.relispartition and n.nspname = any(${[...TENANT_SCHEMAS, "auth"]})
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
  const scoped = new Set(tables.filter((t) => t.schema !== "auth" && t.columns.includes("tenant_id")).map((t) => t.name));
  const keysOf = (table: string) => keys.filter((k) => k.table === table);

  const plans: TablePlan[] = [];
  for (const t of tables) {
    if (t.schema === "auth" || STAYS_WHERE_WRITTEN.has(t.schema)) continue;
    const parents = keysOf(t.name).filter((k) => scoped.has(k.references));
    let filter: string;
    if (scoped.has(t.name)) filter = `t.tenant_id = $1`;
    else if (parents.length > 0) {
      // A row without a tenant column belongs to the tenant when it points at one of the tenant's rows.
      filter = parents
        .map((k) => `t.${ident(k.column)} in (select p.${ident(k.refColumn)} from ${qualified(k.references)} p where p.tenant_id = $1)`)
        .join(" or ");
    } else continue;
    // The primary key, or else a unique key (permission_cache): the copy walks it in order.
    if (!t.pk?.length) throw new TenantMoveError(`${t.name} has no primary or unique key: its rows cannot be copied resumably`);
    for (const k of keysOf(t.name)) {
      if (k.width !== 1) throw new TenantMoveError(`${t.name}: multi-column foreign keys are not supported by tenant moves`);
    }
    plans.push({
      name: t.name,
      sql: qualified(t.name),
      schema: t.schema,
      columns: t.columns,
      primaryKey: t.pk,
      identity: t.identity,
      filter: `(${filter})`,
      authRefs: keysOf(t.name).filter((k) => byName.get(k.references)?.schema === "auth"),
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
  for (const plan of plans.filter((p) => !COPIED_LAST.has(p.name))) visit(plan, new Set());
  return [...ordered, ...plans.filter((p) => COPIED_LAST.has(p.name))];
}

/**
 * Source platform-row id → target id, per referenced table, matched on the unique key that includes
 * tenant_id (for roles: the name). Fails when a platform row the tenant's rows reference is missing
 * on the target.
 */
export async function platformRowMaps(plans: TablePlan[], source: postgres.Sql, target: postgres.Sql, tenantId: string) {
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
    if (natural.length === 0) throw new TenantMoveError(`${table} has no unique key with tenant_id to match platform rows by`);
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
export function projection(plan: TablePlan, maps: Map<string, Record<string, string>>): { expr: string; values: string[] } {
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

export async function checksum(sql: postgres.Sql, plan: TablePlan, rowExpr: string, params: unknown[]) {
  const [row] = await sql.unsafe<{ rows: number; checksum: string }[]>(
    `select count(*)::int as rows, coalesce(md5(string_agg(h, '' order by h)), md5('')) as checksum
       from (select md5(${rowExpr}::text) as h from ${plan.sql} t where ${plan.filter}) q`,
    params as never[],
  );
  return row!;
}

/**
 * Moves a tenant's rows to the database `to` of the topology and points its placement there.
 *
 * @example
 * const result = await moveTenant({ topology, tenantId, to: "tenant_db_1", onProgress: (p) => bar.update(p.done, p.total) });
 */
