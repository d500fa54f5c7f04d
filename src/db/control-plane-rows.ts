/**
 * Control-plane rows in a tenant's own database. A moved tenant's rows keep their foreign keys to
 * `auth.users` and `auth.organizations`, so the referenced rows must exist in that database too:
 * `tenant:move` copies the ones referenced at move time, and the runtime copies a missing one (a
 * member who joined later) just before writing a row that references it. Copies are never updated
 * afterwards; only their ids matter to the keys (DESIGN: cross-database keys become loose).
 */
import { sql } from "drizzle-orm";
import type { Router } from "./router.js";

const TABLES = { users: "auth.users", organizations: "auth.organizations" } as const;

/**
 * Makes sure the rows of `table` with these ids exist in `database`, copying them from main
 * (inside the ambient unit of work: rows main has not committed yet are copied too). Nothing to do
 * when `database` is main.
 */
export async function ensureControlPlaneRows(
  router: Router,
  database: string,
  table: keyof typeof TABLES,
  ids: readonly (string | null | undefined)[],
): Promise<void> {
  const wanted = [...new Set(ids.filter((id): id is string => !!id))];
  if (database === "main" || wanted.length === 0) return;
  const name = sql.raw(TABLES[table]);
  const list = `{${wanted.join(",")}}`;
  const target = router.database(database);
  const present = await target.execute<{ id: string }>(sql`select id::text as id from ${name} where id = any(${list}::uuid[])`);
  if (present.length === wanted.length) return;
  const [row] = await router
    .database("main")
    .execute<{ rows: string | null }>(sql`select json_agg(r)::text as rows from ${name} r where r.id = any(${list}::uuid[])`);
  if (!row?.rows) return;
  await target.execute(sql`insert into ${name} select * from jsonb_populate_recordset(null::${name}, ${row.rows}::jsonb) on conflict do nothing`);
}
