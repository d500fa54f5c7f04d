/**
 * Audit: the cost of recording against a plain INSERT of the same row (single and batched, same run,
 * same pool, same role), a mutation endpoint with its audit event against a bare endpoint doing two
 * INSERTs in one transaction, and verify throughput over sealed rows. Everything on 127.0.0.1.
 */
import { Hono } from "hono";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { createSdk } from "../../src/index.js";
import type { Row, Scenario } from "../types.js";

const BATCH = 100;
const CONCURRENCY = 4;

const scenario: Scenario = async (ctx) => {
  const database = await ctx.freshDatabase();
  const owner = postgres(database.url, { max: 1, onnotice: () => {} });
  // The endpoints' own table, and the bare endpoint's second table shaped like an audit row.
  await owner.unsafe(`
    create table public.bench_items (id bigint generated always as identity primary key, name text not null);
    create table public.bench_log (like audit.audit_logs including defaults including identity);
    grant select, insert on public.bench_items, public.bench_log to sv_app;
    grant usage on all sequences in schema public to sv_app;`);
  await owner.end({ timeout: 5 });
  const sdk = createSdk({ databaseUrl: database.url, environment: "test" });
  const db = sdk.router.db("audit");
  const context = { requestId: "bench-req", actor: { type: "user" as const, id: "bench-user" }, ip: "127.0.0.1", userAgent: "bench" };
  const event = (i: number) => ({
    action: "invoice.paid",
    target: { type: "invoice", id: String(i) },
    metadata: { amount: 42, currency: "EUR" },
    changes: { before: { status: "open" }, after: { status: "paid" } },
  });
  // Exactly the row recordAuditEvent writes, bound as parameters the way an application would.
  const plainRow = (i: number) => sql`(${null}::uuid, ${"user"}, ${"bench-user"}, ${"invoice.paid"}, ${"invoice"}, ${String(i)},
    ${"127.0.0.1"}, ${"bench"}, ${"bench-req"}, ${JSON.stringify(event(i).metadata)}::jsonb, ${JSON.stringify(event(i).changes)}::jsonb)`;
  const plainInsert = (table: string, rows: ReturnType<typeof plainRow>[]) =>
    db.execute(sql`insert into ${sql.raw(table)} (tenant_id, actor_type, actor_id, action, target_type, target_id, ip, user_agent,
      request_id, metadata, changes) values ${sql.join(rows, sql`, `)}`);

  try {
    let n = 0;
    const insert = await ctx.measure(() => sdk.transaction(() => plainInsert("audit.audit_logs", [plainRow(n++)])), {
      concurrency: CONCURRENCY,
    });
    const record = await ctx.measure(
      () => sdk.transaction(() => sdk.withContext(context, () => sdk.audit.recordAuditEvent(event(n++)))),
      { concurrency: CONCURRENCY },
    );
    const insertBatch = await ctx.measure(
      () => sdk.transaction(() => plainInsert("audit.audit_logs", Array.from({ length: BATCH }, () => plainRow(n++)))),
      { concurrency: CONCURRENCY },
    );
    const recordBatch = await ctx.measure(
      () =>
        sdk.transaction(() =>
          sdk.withContext(context, () => sdk.audit.recordAuditEvents(Array.from({ length: BATCH }, () => event(n++)))),
        ),
      { concurrency: CONCURRENCY },
    );

    // Endpoints: the same Hono app shape, one transaction each.
    const app = new Hono();
    app.post("/audited", async (c) => {
      await sdk.transaction(async () => {
        await sdk.router.database().execute(sql`insert into public.bench_items (name) values ('item')`);
        await sdk.withContext(context, () => sdk.audit.recordAuditEvent(event(0)));
      });
      return c.json({ ok: true }, 201);
    });
    app.post("/bare", async (c) => {
      await sdk.transaction(async () => {
        await sdk.router.database().execute(sql`insert into public.bench_items (name) values ('item')`);
        await plainInsert("public.bench_log", [plainRow(0)]);
      });
      return c.json({ ok: true }, 201);
    });
    const server = await ctx.serve(app.fetch);
    let audited;
    let bare;
    try {
      // Within the pool (10): postgres.js degrades when in-flight queries exceed it (#747).
      bare = await ctx.load({ url: `${server.url}/bare`, method: "POST", connections: 10 });
      audited = await ctx.load({ url: `${server.url}/audited`, method: "POST", connections: 10 });
    } finally {
      await server.close();
    }

    // Verify: seal everything written above, then time a full verification.
    for (let i = 0; i < 50; i++) {
      await sdk.audit.seal();
      const [left] = await db.execute<{ n: number }>(
        sql`select count(*)::int as n from audit.audit_logs where txid >= coalesce((select max(to_txid) from audit.audit_seals), 0)`,
      );
      if (left!.n === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const started = performance.now();
    const verified = await sdk.audit.verify();
    const verifySeconds = (performance.now() - started) / 1000;
    const verifiedRows = verified.rows;

    const singleCost = insert.opsPerSecond / record.opsPerSecond;
    const batchCost = insertBatch.opsPerSecond / recordBatch.opsPerSecond;
    const endpointRatio = audited.requestsPerSecond / bare.requestsPerSecond;
    const rows: Row[] = [
      { scenario: "audit: plain INSERT of an audit row (1 tx)", throughput: insert.opsPerSecond, unit: "ops/s", p50Ms: insert.p50Ms, p99Ms: insert.p99Ms },
      {
        scenario: "audit: recordAuditEvent (1 tx)",
        throughput: record.opsPerSecond,
        unit: "ops/s",
        p50Ms: record.p50Ms,
        p99Ms: record.p99Ms,
        ratio: { against: "plain INSERT (cost)", value: singleCost },
        target: "<= 1.3x insert",
        pass: singleCost <= 1.3,
      },
      {
        scenario: `audit: plain INSERT of ${BATCH} rows (1 tx)`,
        throughput: insertBatch.opsPerSecond * BATCH,
        unit: "rows/s",
        p50Ms: insertBatch.p50Ms,
        p99Ms: insertBatch.p99Ms,
      },
      {
        scenario: `audit: recordAuditEvents of ${BATCH} (1 tx)`,
        throughput: recordBatch.opsPerSecond * BATCH,
        unit: "rows/s",
        p50Ms: recordBatch.p50Ms,
        p99Ms: recordBatch.p99Ms,
        ratio: { against: "plain batched INSERT (cost)", value: batchCost },
        target: "<= 1.3x insert",
        pass: batchCost <= 1.3,
      },
      { scenario: "audit: bare endpoint, 2 INSERTs in 1 tx", throughput: bare.requestsPerSecond, unit: "req/s", p50Ms: bare.p50Ms, p99Ms: bare.p99Ms, note: `${bare.non2xx + bare.errors} errors` },
      {
        scenario: "audit: mutation endpoint + audit event",
        throughput: audited.requestsPerSecond,
        unit: "req/s",
        p50Ms: audited.p50Ms,
        p99Ms: audited.p99Ms,
        ratio: { against: "bare 2-INSERT endpoint", value: endpointRatio },
        target: ">= 0.8x bare",
        pass: endpointRatio >= 0.8 && audited.non2xx + audited.errors === 0,
      },
      {
        scenario: "audit: verify (sealed rows)",
        throughput: verifiedRows / verifySeconds,
        unit: "rows/s",
        note: `${verifiedRows} rows, ${verified.seals} seals, ${verified.ok ? "OK" : "BROKEN"}`,
        pass: verified.ok,
      },
    ];
    return rows;
  } finally {
    await sdk.close();
    await database.drop();
  }
};

export default scenario;
