/**
 * verify's search for a row slipped into sealed history, as planned on a trail of many tenants: one
 * pass over the rows of the txid range, joined to each tenant's last seal — never a lookup per row
 * (a correlated subquery, which passed the 5 s statement timeout at 1M rows in the growth bench).
 */
import { PgDialect } from "drizzle-orm/pg-core";
import postgres from "postgres";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { planNodes } from "../../../test/support.js";
import { createIsolatedDatabase, type IsolatedDatabase } from "../../testing/database.js";
import { intruderStatement } from "./verify.js";

let database: IsolatedDatabase;
let owner: postgres.Sql;

beforeAll(async () => {
  database = await createIsolatedDatabase(inject("svTestDatabase"));
  owner = postgres(database.url, { max: 1, onnotice: () => {} });
  // 20k rows of 100 tenants in one transaction, sealed per tenant up to an earlier txid.
  await owner`
    insert into audit.audit_logs (tenant_id, actor_type, action, target_type, target_id)
    select md5('t-' || (k % 100))::uuid, 'system', 'doc.edited', 'doc', 'd-' || k from generate_series(1, 20000) k`;
  await owner`
    insert into audit.audit_seals (tenant_id, from_id, to_id, from_txid, to_txid, row_count, rows_hash, digests, prev_seal_hash, seal_hash)
    select md5('t-' || t)::uuid, 0, 0, 0, 1, 0, '', ''::bytea, null, md5(t::text) from generate_series(0, 99) t`;
  await owner`analyze audit.audit_logs, audit.audit_seals`;
}, 60_000);

afterAll(async () => {
  await owner?.end({ timeout: 5 });
  await database?.drop();
});

it("finds a row below the frontier but past its tenant's last seal in one pass, without a lookup per row", async () => {
  const [last] = await owner<{ txid: string }[]>`select max(txid)::text as txid from audit.audit_logs`;
  const statement = new PgDialect().sqlToQuery(intruderStatement(1n, BigInt(last!.txid) + 1n));
  const nodes = await planNodes(owner, statement);
  expect(nodes.filter((n) => n["Parent Relationship"] === "SubPlan")).toEqual([]);
  expect(nodes.map((n) => n["Node Type"])).toContain("Hash Join");
  // And it finds such a row: every row here is past its tenant's last seal (txid 1).
  const found = await owner.unsafe(statement.sql, statement.params as never[]);
  expect(found).toHaveLength(1);
});
