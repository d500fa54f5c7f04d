/**
 * Moving one tenant to another database of the topology (`sv-sdk tenant:move`): copy its rows in
 * batches, verify per-table counts and checksums on both sides, flip its placement in the control
 * plane in one transaction, then remove the source rows.
 *
 * Which rows: every `tenant` table of the catalog with a `tenant_id` column holds the tenant's rows
 * `where tenant_id = $tenant`; a table without one whose foreign key points at such a table holds
 * the rows that reference the tenant's rows. Both are discovered from the catalog, not listed here,
 * so a new tenant-scoped table moves without a change to this file. A table declared
 * `staysWhereWritten` stays where it was written (tenant-move-plan.ts says why). Control-plane tables
 * stay on the control plane's database; the control-plane rows the moved rows reference (the
 * tenant's row, its users) are copied to the target first, with ON CONFLICT DO NOTHING, because
 * foreign keys point at them there too.
 *
 * Platform rows a tenant's rows point at (the built-in global roles its members hold) are seeded in
 * every database with ids of their own, so references to them are translated to the target's row of
 * the same natural key (the table's unique key that includes tenant_id: a role's name). A platform
 * row the target lacks stops the move before anything is copied (seed the target first).
 *
 * Consistency: the placement goes to state 'moving' first and stays there until the flip; the move
 * then waits for the units of work already writing to the tenant (its write gate), and every unit
 * entering the tenant afterwards is read-only where the tenant's rows are (the API answers 503
 * TENANT_MOVING to writes; reads go on). A session advisory lock keeps two moves of one tenant apart. Resumable: the last copied primary key of each table is recorded in
 * `platform.tenant_moves` after each batch; a re-run continues after it, and ON CONFLICT DO NOTHING makes
 * the batch in flight at a crash harmless to copy again. The copy runs as the owner (row-level
 * security does not apply to it), with TimeZone UTC on every connection so that row texts — and
 * therefore checksums — are the same on both sides.
 */
import postgres from "postgres";
import { appliedMigrationCount, shippedMigrationCount } from "./migrate.js";
import type { ModuleCatalog } from "./module.js";
import { PLACEMENTS_CHANNEL } from "./router.js";
import { databaseOf, type Topology } from "./topology.js";
import {
  checksum,
  ident,
  planTables,
  platformRowMaps,
  projection,
  qualified,
  TenantMoveError,
  type TablePlan,
} from "./tenant-move-plan.js";

export { TenantMoveError };

/** `pg_try_advisory_lock(class, hashtext(tenant))`: 'svtm'. */
const MOVE_LOCK_CLASS = 1_937_142_893;
/** The tenant's write gate, held shared by every unit of work in the tenant (platform.enter_tenant): 'svtw'. */
const WRITE_GATE_CLASS = 1_937_142_903;
const DEFAULT_BATCH = 500;

export interface TenantMoveProgress {
  phase: "copy" | "verify" | "delete";
  table: string;
  /** Rows copied so far (over all tables, previous runs included). */
  done: number;
  total: number;
}

export interface MoveTenantOptions {
  topology: Topology;
  /** The modules whose tables hold tenant rows (what moves is what they declare). */
  catalog: ModuleCatalog;
  tenantId: string;
  /** Name of the target database in the topology (migrated). */
  to: string;
  /** Rows per batch (default 500). */
  batchSize?: number;
  /** Continue an unfinished move of this tenant (without it an unfinished move is refused). */
  resume?: boolean;
  onProgress?: (progress: TenantMoveProgress) => void;
  /** Called after each batch commits on the target; an error thrown here stops the move (tests use it to crash one). */
  afterBatch?: (table: string) => void | Promise<void>;
}

export interface TableReport {
  table: string;
  rows: number;
  /** md5 over the sorted md5 of every row's jsonb text: independent of row order. */
  checksum: string;
}

export interface MoveTenantResult {
  tenantId: string;
  from: string;
  to: string;
  /** Nothing to do: the tenant already lives on `to`. */
  alreadyThere: boolean;
  resumed: boolean;
  /** Rows inserted on the target by this run (a resumed run skips the batches copied before). */
  rowsCopied: number;
  rowsRemoved: number;
  tables: TableReport[];
}

function connect(url: string) {
  return postgres(url, {
    max: 1,
    onnotice: () => {},
    connect_timeout: 10,
    connection: { TimeZone: "UTC", application_name: "sv-sdk tenant:move" },
  });
}

export async function moveTenant(options: MoveTenantOptions): Promise<MoveTenantResult> {
  const { topology, tenantId, to, catalog } = options;
  if (!catalog.tenantsTable) throw new TenantMoveError("no module defines tenants: nothing to move", "usage");
  const tenantsTable = qualified(catalog.tenantsTable);
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  if (!topology.databases[to]) {
    throw new TenantMoveError(
      `the topology has no database named '${to}' (it has: ${Object.keys(topology.databases).join(", ")})`,
      "usage",
    );
  }
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new TenantMoveError("the batch size must be a positive whole number", "usage");

  const connections = new Map<string, postgres.Sql>();
  const db = (name: string) => {
    let sql = connections.get(name);
    if (!sql) {
      sql = connect(topology.databases[name]!.url);
      connections.set(name, sql);
    }
    return sql;
  };
  const main = db("main");
  try {
    // Session-level: held on main's single connection until it closes, whatever happens.
    const [lock] = await main<
      { ok: boolean }[]
    >`select pg_try_advisory_lock(${MOVE_LOCK_CLASS}, hashtext(${tenantId})) as ok`;
    if (!lock!.ok) throw new TenantMoveError(`another move of tenant ${tenantId} is running`);

    const [org] = await main.unsafe(`select 1 from ${tenantsTable} where id = $1`, [tenantId]);
    if (!org) throw new TenantMoveError(`there is no tenant (organization) with id ${tenantId}`);
    const [placement] = await main<{ database: string; state: string }[]>`
      select database, state from platform.tenant_placements where tenant_id = ${tenantId}`;
    const [unfinished] = await main<{ source: string; target: string; phase: string }[]>`
      select source, target, phase from platform.tenant_moves where tenant_id = ${tenantId} and phase <> 'done'`;

    let from: string;
    if (unfinished) {
      if (!options.resume) {
        throw new TenantMoveError(
          `an unfinished move of this tenant to '${unfinished.target}' exists (phase ${unfinished.phase}): run it again with --resume`,
          "usage",
        );
      }
      if (unfinished.target !== to) {
        throw new TenantMoveError(
          `the unfinished move of this tenant goes to '${unfinished.target}': resume it with --to ${unfinished.target}`,
          "usage",
        );
      }
      from = unfinished.source;
    } else {
      from = placement?.database ?? "main";
      if (!placement) {
        const elsewhere = catalog.tenantSchemas.filter((schema) => databaseOf(topology, schema) !== "main");
        if (elsewhere.length > 0) {
          throw new TenantMoveError(
            `the topology places ${elsewhere.join(", ")} outside main; moving a tenant without a placement out of a split topology is not supported yet`,
          );
        }
      }
      if (from === to)
        return { tenantId, from, to, alreadyThere: true, resumed: false, rowsCopied: 0, rowsRemoved: 0, tables: [] };
    }
    if (!topology.databases[from])
      throw new TenantMoveError(`the tenant lives on '${from}', which the topology does not define`);

    const shipped = shippedMigrationCount();
    for (const name of [from, to]) {
      const applied = await appliedMigrationCount(db(name));
      if (applied !== shipped) {
        throw new TenantMoveError(
          `database '${name}' is not migrated (${applied}/${shipped}): run \`sv-sdk migrate\` first`,
        );
      }
    }
    const source = db(from);
    const target = db(to);

    if (!unfinished) {
      await main.begin(async (tx) => {
        await tx`insert into platform.tenant_placements (tenant_id, database, state) values (${tenantId}, ${from}, 'moving')
                 on conflict (tenant_id) do update set state = 'moving', updated_at = now()`;
        await tx`insert into platform.tenant_moves (tenant_id, source, target) values (${tenantId}, ${from}, ${to})
                 on conflict (tenant_id) do update set source = excluded.source, target = excluded.target,
                   phase = 'copying', cursor = '{}', rows_copied = 0, started_at = now(), updated_at = now()`;
      });
    }

    // Units of work that entered the tenant before it was marked 'moving' may still be writing to
    // it: wait for them (each holds the tenant's write gate shared until it ends; drizzle/0010). Any
    // unit entering from now on sees 'moving' and cannot write the tenant's rows.
    await main`select pg_advisory_lock(${WRITE_GATE_CLASS}, hashtext(${tenantId}))`;
    await main`select pg_advisory_unlock(${WRITE_GATE_CLASS}, hashtext(${tenantId}))`;

    const plans = await planTables(target, catalog);
    // Caches are not copied: the target computes them afresh (a move back then compares nothing stale).
    const copied = plans.filter((plan) => !plan.derived);
    const tables: TableReport[] = [];
    let rowsCopied = 0;
    const phase = unfinished?.phase ?? "copying";

    if (phase === "copying") {
      const maps = await platformRowMaps(plans, source, target, tenantId);

      const totals = new Map<string, number>();
      for (const plan of copied) {
        const [row] = await source.unsafe<{ n: number }[]>(
          `select count(*)::int as n from ${plan.sql} t where ${plan.filter}`,
          [tenantId],
        );
        totals.set(plan.name, row!.n);
      }
      const total = [...totals.values()].reduce((a, b) => a + b, 0);
      let done = 0;
      for (const plan of copied) {
        const [row] = await target.unsafe<{ n: number }[]>(
          `select count(*)::int as n from ${plan.sql} t where ${plan.filter}`,
          [tenantId],
        );
        done += Math.min(row!.n, totals.get(plan.name)!);
      }
      options.onProgress?.({ phase: "copy", table: "", done, total });

      if (from !== to && to !== "main") {
        // The tenant's organization first: every tenant row's foreign key points at it.
        await copyAuthRows(main, target, catalog.tenantsTable!, [tenantId]);
      }
      for (const plan of copied) {
        await copyTable(plan, {
          main,
          source,
          target,
          tenantId,
          batchSize,
          to,
          row: projection(plan, maps),
          progress: (read, inserted) => {
            rowsCopied += inserted;
            done += read;
            options.onProgress?.({ phase: "copy", table: plan.name, done: Math.min(done, total), total });
          },
          afterBatch: options.afterBatch,
        });
      }

      for (const plan of copied) {
        for (const column of plan.identity) {
          // Copied ids came from the source's sequence: the target's must continue above them.
          await target.unsafe(
            `select setval(s, greatest(m, coalesce(pg_sequence_last_value(s), 1)))
               from (select pg_get_serial_sequence($1, $2)::regclass as s,
                            (select coalesce(max(${ident(column)}), 1) from ${plan.sql}) as m) q`,
            [plan.name, column],
          );
        }
      }

      for (const plan of copied) {
        options.onProgress?.({ phase: "verify", table: plan.name, done: total, total });
        const row = projection(plan, maps);
        const expected = await checksum(source, plan, row.expr, [tenantId, ...row.values]);
        const actual = await checksum(target, plan, "to_jsonb(t)", [tenantId]);
        if (expected.rows !== actual.rows || expected.checksum !== actual.checksum) {
          throw new TenantMoveError(
            `${plan.name} differs after the copy: ${expected.rows} rows (${expected.checksum}) on '${from}', ` +
              `${actual.rows} rows (${actual.checksum}) on '${to}' — rows changed during the move, or rows with the same ` +
              `primary key already exist on the target; the tenant stays on '${from}' (state 'moving')`,
          );
        }
        tables.push({ table: plan.name, rows: actual.rows, checksum: actual.checksum });
      }

      // The flip: one transaction in the control plane.
      await main.begin(async (tx) => {
        await tx`update platform.tenant_placements set database = ${to}, state = 'active', updated_at = now() where tenant_id = ${tenantId}`;
        await tx`update platform.tenant_moves set phase = 'switched', updated_at = now() where tenant_id = ${tenantId}`;
        // Running instances drop their cached placements at this commit.
        await tx`select pg_notify(${PLACEMENTS_CHANNEL}, ${tenantId})`;
      });
    } else {
      for (const plan of copied) {
        const report = await checksum(target, plan, "to_jsonb(t)", [tenantId]);
        tables.push({ table: plan.name, rows: report.rows, checksum: report.checksum });
      }
    }

    // Source rows, children before parents, in one transaction: all of the tenant's rows go, or none.
    let rowsRemoved = 0;
    const toRemove = tables.reduce((n, t) => n + t.rows, 0);
    await source.begin(async (tx) => {
      for (const plan of [...plans].reverse()) {
        const deleted = await tx.unsafe(`delete from ${plan.sql} t where ${plan.filter}`, [tenantId]);
        rowsRemoved += deleted.count;
        options.onProgress?.({
          phase: "delete",
          table: plan.name,
          done: Math.min(rowsRemoved, toRemove),
          total: toRemove,
        });
      }
    });
    await main`update platform.tenant_moves set phase = 'done', updated_at = now() where tenant_id = ${tenantId}`;
    return { tenantId, from, to, alreadyThere: false, resumed: !!unfinished, rowsCopied, rowsRemoved, tables };
  } finally {
    await Promise.all([...connections.values()].map((sql) => sql.end({ timeout: 5 })));
  }
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

/** Copies a table's tenant rows in primary-key order, after the cursor recorded by an earlier run. */
async function copyTable(plan: TablePlan, c: CopyContext): Promise<void> {
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
        await copyAuthRows(c.main, c.target, k.references, ids);
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

/** Copies control-plane rows (users, the organization) that moved rows reference, if missing. */
async function copyAuthRows(main: postgres.Sql, target: postgres.Sql, table: string, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  const name = qualified(table);
  const [row] = await main.unsafe<{ rows: string | null }[]>(
    `select json_agg(r)::text as rows from ${name} r where r.id = any($1::uuid[])`,
    [ids] as never[],
  );
  if (!row?.rows) return;
  await target.unsafe(
    `insert into ${name} select * from jsonb_populate_recordset(null::${name}, $1::text::jsonb) on conflict do nothing`,
    [row.rows],
  );
}
