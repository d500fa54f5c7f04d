/**
 * The plan of a filtered audit page, as the runtime runs it (the `sv_app` role, a tenant selected,
 * row-level security on): it must walk the tenant's index newest first and stop after the page, so
 * a page costs the same at 10k and 1M events. The policy hides the tenant from the planner's
 * estimates; without PAGE_PLANNER_SETTINGS it read every row of the tenant and sorted them.
 */
import { randomUUID } from "node:crypto";
import { PgDialect } from "drizzle-orm/pg-core";
import postgres from "postgres";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { type PlanNode, planNodes } from "../../../test/support.js";
import { createIsolatedDatabase, type IsolatedDatabase } from "../../testing/database.js";
import { PAGE_PLANNER_SETTINGS, pageStatement } from "./query.js";

const ROWS = 30_000;
const tenant = randomUUID();
let database: IsolatedDatabase;
let owner: postgres.Sql;

beforeAll(async () => {
  database = await createIsolatedDatabase(inject("svTestDatabase"));
  owner = postgres(database.url, { max: 1, onnotice: () => {} });
  await owner`insert into auth.organizations (id, name, slug) values (${tenant}, 'Plan', ${`plan-${tenant}`})`;
  // Most rows belong to other tenants; the page's tenant has a tenth of them, every action.
  await owner`
    insert into audit.audit_logs (occurred_at, tenant_id, actor_type, action, target_type, target_id)
    select now() - (k || ' seconds')::interval, case when k % 10 = 0 then ${tenant}::uuid end, 'system',
           (array['role.created', 'member.added', 'user.signed_in'])[1 + k % 3], 'role', 'role-' || k
    from generate_series(1, ${ROWS}) k`;
  await owner`analyze audit.audit_logs`;
}, 60_000);

afterAll(async () => {
  await owner?.end({ timeout: 5 });
  await database?.drop();
});

async function planOfPage(): Promise<PlanNode[]> {
  const page = new PgDialect().sqlToQuery(pageStatement(tenant, { action: "role." }, undefined, 21));
  const settings = new PgDialect().sqlToQuery(PAGE_PLANNER_SETTINGS);
  return owner.begin(async (tx) => {
    await tx.unsafe("set local role sv_app");
    await tx`select set_config('sv.tenant_id', ${tenant}, true), set_config('transaction_read_only', 'on', true)`;
    await tx.unsafe(settings.sql, settings.params as never[]);
    return planNodes(tx, page);
  });
}

it("a filtered page walks the tenant's index newest first: no sort, no bitmap of the whole trail", async () => {
  const nodes = await planOfPage();
  const types = nodes.map((n) => n["Node Type"]);
  expect(types).not.toContain("Sort");
  expect(types).not.toContain("Bitmap Heap Scan");
  expect(types).not.toContain("Seq Scan");
  expect(nodes.some((n) => n["Index Name"]?.endsWith("tenant_id_occurred_at_id_idx"))).toBe(true);
});
