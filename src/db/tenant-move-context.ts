/**
 * What every tenant-move command starts with (move, abort, finalize, dry run): owner connections to the
 * databases involved (TimeZone UTC, so row texts — and checksums — are the same on both sides), a
 * session advisory lock that keeps two commands on one tenant apart, and the tenant's placement and
 * move record from the control plane.
 */
import postgres from "postgres";
import { appliedMigrationCount, shippedMigrationCount } from "./migration-count.js";
import type { ModuleCatalog } from "./module.js";
import { qualified, TenantMoveError } from "./tenant-move-plan.js";
import type { Topology } from "./topology.js";

/** `pg_try_advisory_lock(class, hashtext(tenant))`: 'svtm'. */
const MOVE_LOCK_CLASS = 1_937_142_893;
/** The tenant's write gate, held shared by every unit of work in the tenant (platform.tenant_entry): 'svtw'. */
const WRITE_GATE_CLASS = 1_937_142_903;

export interface TenantMoveProgress {
  phase: "copy" | "verify";
  table: string;
  /** Rows copied so far (over all tables, previous runs included). */
  done: number;
  total: number;
}

export type MovePhase = "preparing" | "syncing" | "copying" | "cutover" | "switched" | "done" | "finalized" | "aborted";

/** Phases of a move under way: the placement still points at the source (switched: at the target). */
export const UNFINISHED: MovePhase[] = ["preparing", "syncing", "copying", "cutover", "switched"];

export interface MoveRecord {
  source: string;
  target: string;
  phase: MovePhase;
  mode: "online" | "offline";
  cutoverMs: number | null;
}

export interface MoveContext {
  tenantId: string;
  main: postgres.Sql;
  db(name: string): postgres.Sql;
  placement?: { database: string; state: string };
  record?: MoveRecord;
  close(): Promise<void>;
}

function connect(url: string, max = 2) {
  return postgres(url, {
    max,
    onnotice: () => {},
    connect_timeout: 10,
    connection: { TimeZone: "UTC", application_name: "sv-sdk tenant:move" },
  });
}

/** Opens the connections, takes the tenant's move lock and reads its state; `close()` releases all. */
export async function openMove(topology: Topology, catalog: ModuleCatalog, tenantId: string): Promise<MoveContext> {
  if (!catalog.tenantsTable) throw new TenantMoveError("no module defines tenants: nothing to move", "usage");
  const connections = new Map<string, postgres.Sql>();
  const db = (name: string) => {
    const database = topology.databases[name];
    if (!database) throw new TenantMoveError(`the topology does not define a database named '${name}'`, "usage");
    let sql = connections.get(name);
    if (!sql) {
      sql = connect(database.url);
      connections.set(name, sql);
    }
    return sql;
  };
  const main = db("main");
  // The lock is a session's: held by a connection of its own for the command's whole run.
  const locker = connect(topology.databases.main!.url, 1);
  const close = async () => {
    await Promise.all([locker, ...connections.values()].map((sql) => sql.end({ timeout: 5 })));
  };
  try {
    const [lock] = await locker<
      { ok: boolean }[]
    >`select pg_try_advisory_lock(${MOVE_LOCK_CLASS}, hashtext(${tenantId})) as ok`;
    if (!lock!.ok) throw new TenantMoveError(`another move of tenant ${tenantId} is running`);
    const [org] = await main.unsafe(`select 1 from ${qualified(catalog.tenantsTable)} where id = $1`, [tenantId]);
    if (!org) throw new TenantMoveError(`there is no tenant (organization) with id ${tenantId}`);
    const [placement] = await main<{ database: string; state: string }[]>`
      select database, state from platform.tenant_placements where tenant_id = ${tenantId}`;
    const [record] = await main<MoveRecord[]>`
      select source, target, phase, mode, cutover_ms as "cutoverMs" from platform.tenant_moves where tenant_id = ${tenantId}`;
    return { tenantId, main, db, placement, record, close };
  } catch (error) {
    await close();
    throw error;
  }
}

export async function checkMigrated(context: MoveContext, names: string[]): Promise<void> {
  const shipped = shippedMigrationCount();
  for (const name of names) {
    const applied = await appliedMigrationCount(context.db(name));
    if (applied !== shipped) {
      throw new TenantMoveError(
        `database '${name}' is not migrated (${applied}/${shipped}): run \`sv-sdk migrate\` first`,
      );
    }
  }
}

/** Sets the move's phase (and any other columns given) in the control plane. */
export async function setPhase(context: MoveContext, phase: MovePhase, extra: { cutoverMs?: number } = {}) {
  await context.main`
    update platform.tenant_moves
       set phase = ${phase}, updated_at = now(),
           cutover_ms = coalesce(${extra.cutoverMs ?? null}::int, cutover_ms),
           finalized_at = case when ${phase} = 'finalized' then now() else finalized_at end
     where tenant_id = ${context.tenantId}`;
}

/**
 * Units of work that entered the tenant before it was marked 'moving' may still be writing to it:
 * wait for them. Each holds the tenant's write gate shared until it ends (drizzle/0010, 0024) — on
 * main when it entered there, on the source when it entered where the rows live (a tenant on a
 * database of its own, remembered by the router). Every unit entering afterwards sees 'moving', on
 * main or in the source's residents, and cannot write the tenant's rows (503 TENANT_MOVING).
 */
export async function waitForWritesInFlight(context: MoveContext, source: string, timeoutMs = 30_000): Promise<void> {
  const gates = source === "main" ? [context.main] : [context.main, context.db(source)];
  for (const sql of gates) {
    await sql.begin(async (tx) => {
      await tx.unsafe(`set local lock_timeout = ${Math.max(1, Math.round(timeoutMs))}`);
      await tx`select pg_advisory_xact_lock(${WRITE_GATE_CLASS}, hashtext(${context.tenantId}))`;
    });
  }
}

/**
 * The tenant's row in `database`'s residents (drizzle/0024): 'active' where it lives, 'moving' on a
 * move's source for the cutover, none (null) where it does not live. Main keeps no such rows (its
 * placements say it); a router entering the tenant on `database` reads this row.
 */
export async function setResident(
  context: MoveContext,
  database: string,
  state: "active" | "moving" | null,
): Promise<void> {
  if (database === "main") return;
  const sql = context.db(database);
  if (state === null) {
    await sql`delete from platform.tenant_residents where tenant_id = ${context.tenantId}`;
  } else {
    await sql`insert into platform.tenant_residents (tenant_id, state) values (${context.tenantId}, ${state})
              on conflict (tenant_id) do update set state = excluded.state, updated_at = now()`;
  }
}
