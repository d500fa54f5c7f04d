/**
 * The offline tenant move's copy (`tenant:move --offline`, tenant-move.ts): the tenant's rows in batches
 * of primary-key order while its placement is 'moving' (its writes refused for the whole copy), the last
 * copied key of each table recorded after each batch so a re-run continues after it (ON CONFLICT DO
 * NOTHING makes the batch in flight at a crash harmless to copy again), and references to platform rows
 * translated to the target's rows of the same natural key. Verified with md5 over the sorted row md5s.
 */
import type postgres from "postgres";
import type { MoveContext, TenantMoveProgress } from "./tenant-move-context.js";
import { checksum, ident, projection, TenantMoveError, type TablePlan } from "./tenant-move-plan.js";
import { copyControlPlaneRows, countTenantRows, type TableReport } from "./tenant-move-rows.js";

/** The offline batch copy of every table (resumable from the recorded cursors). */
export async function copyOffline(
  context: MoveContext,
  work: {
    source: postgres.Sql;
    target: postgres.Sql;
    plans: TablePlan[];
    maps: Map<string, Record<string, string>>;
    to: string;
    batchSize: number;
  },
  options: {
    onProgress?: (progress: TenantMoveProgress) => void;
    afterBatch?: (table: string) => void | Promise<void>;
  },
): Promise<number> {
  const { source, target, plans, maps, to, batchSize } = work;
  const total = await countTenantRows(source, plans, context.tenantId);
  const [recorded] = await context.main<{ n: number }[]>`
    select rows_copied::int as n from platform.tenant_moves where tenant_id = ${context.tenantId}`;
  let done = recorded?.n ?? 0;
  let inserted = 0;
  options.onProgress?.({ phase: "copy", table: "", done, total });
  for (const plan of plans) {
    await copyTable(plan, {
      ...{ main: context.main, source, target, tenantId: context.tenantId, batchSize, to },
      row: projection(plan, maps),
      progress: (_read, count) => {
        inserted += count;
        done += count;
        options.onProgress?.({ phase: "copy", table: plan.name, done: Math.min(done, total), total });
      },
      afterBatch: options.afterBatch,
    });
  }
  return inserted;
}

/** The offline check: md5 over the sorted row md5s, the source's rows projected as the target must hold them. */
export async function verifyOffline(
  source: postgres.Sql,
  target: postgres.Sql,
  plans: TablePlan[],
  maps: Map<string, Record<string, string>>,
  tenantId: string,
  names: { from: string; to: string },
): Promise<TableReport[]> {
  const reports: TableReport[] = [];
  for (const plan of plans) {
    const row = projection(plan, maps);
    const expected = await checksum(source, plan, row.expr, [tenantId, ...row.values]);
    const actual = await checksum(target, plan, "to_jsonb(t)", [tenantId]);
    if (expected.rows !== actual.rows || expected.checksum !== actual.checksum) {
      throw new TenantMoveError(
        `${plan.name} differs after the copy: ${expected.rows} rows (${expected.checksum}) on '${names.from}', ${actual.rows} rows (${actual.checksum}) on '${names.to}'`,
      );
    }
    reports.push({ table: plan.name, rows: actual.rows, checksum: actual.checksum });
  }
  return reports;
}

interface CopyContext {
  main: postgres.Sql;
  source: postgres.Sql;
  target: postgres.Sql;
  tenantId: string;
  to: string;
  batchSize: number;
  row: { expr: string; values: string[] };
  /** Rows read from the source and inserted on the target by one batch. */
  progress: (read: number, inserted: number) => void;
  afterBatch?: (table: string) => void | Promise<void>;
}

/** The offline copy: a table's tenant rows in primary-key order, after the cursor recorded by an earlier run. */
export async function copyTable(plan: TablePlan, c: CopyContext): Promise<void> {
  const pk = plan.primaryKey.map((k) => `t.${ident(k)}`).join(", ");
  const cursorParam = c.row.values.length + 2;
  const controlPlaneColumns = plan.controlPlaneRefs.map((k, i) => `t.${ident(k.column)}::text as a${i}`);
  const select = (withCursor: boolean) =>
    `select ${c.row.expr}::text as j, jsonb_build_object(${plan.primaryKey.map((k) => `'${k}', t.${ident(k)}`).join(", ")})::text as k
            ${controlPlaneColumns.map((a) => `, ${a}`).join("")}
       from ${plan.sql} t
      where ${plan.filter}
            ${withCursor ? `and (${pk}) > (select ${plan.primaryKey.map((k) => `c.${ident(k)}`).join(", ")} from jsonb_populate_record(null::${plan.sql}, $${cursorParam}::text::jsonb) c)` : ""}
      order by ${pk}
      limit ${c.batchSize}`;

  const [state] = await c.main<{ cursor: string | null }[]>`
    select cursor ->> ${plan.name} as cursor from platform.tenant_moves where tenant_id = ${c.tenantId}`;
  let cursor = state?.cursor ?? null;
  for (;;) {
    const params: unknown[] = [c.tenantId, ...c.row.values];
    if (cursor !== null) params.push(cursor);
    const rows = await c.source.unsafe<Record<string, string | null>[]>(select(cursor !== null), params as never[]);
    if (rows.length === 0) return;
    if (c.to !== "main") {
      for (const [i, k] of plan.controlPlaneRefs.entries()) {
        const ids = [...new Set(rows.map((r) => r[`a${i}`]).filter((v): v is string => !!v))];
        await copyControlPlaneRows(c.main, c.target, k.references, ids);
      }
    }
    const inserted = await c.target.unsafe(
      `insert into ${plan.sql} overriding system value
       select * from jsonb_populate_recordset(null::${plan.sql}, $1::text::jsonb) on conflict do nothing`,
      [`[${rows.map((r) => r.j).join(",")}]`],
    );
    cursor = rows[rows.length - 1]!.k!;
    await c.main`
      update platform.tenant_moves
         set cursor = jsonb_set(cursor, ${[plan.name]}, ${cursor}::text::jsonb),
             rows_copied = rows_copied + ${inserted.count}, updated_at = now()
       where tenant_id = ${c.tenantId}`;
    c.progress(rows.length, inserted.count);
    await c.afterBatch?.(plan.name);
    if (rows.length < c.batchSize) return;
  }
}
