/**
 * Tamper evidence without serializing writers: the write path is a plain INSERT, and a sealer seals
 * committed rows afterwards, per tenant, into a hash chain.
 *
 * Which rows are final? Identity ids are handed out at INSERT time but become visible at COMMIT, so a
 * row with a small id can still appear after larger ids were seen: sealing "every row below the
 * highest id seen" would either miss it forever or flag it as tampering. A time lag
 * (`occurred_at < now() - 5s`) only narrows that window: a transaction open longer than the lag
 * still commits into sealed history. Each row therefore carries the id of the transaction that wrote
 * it (`txid`, default `pg_current_xact_id()`, which sv_app cannot override), and the sealer takes
 * `pg_snapshot_xmin(pg_current_snapshot())`: every transaction below it has committed or aborted, so
 * the set of rows with `txid` below it can never change again. A seal covers every row of its tenant
 * with `txid` in [from_txid, to_txid); consecutive seals of a tenant are contiguous (the first starts
 * at 0), so all of a tenant's history below its last `to_txid` is covered by exactly one seal.
 *
 * Consequences, by design:
 * - A long-open writing transaction holds the horizon back (sealing waits; it never guesses).
 * - A row that shows up later inside a sealed txid range (only an owner can forge `txid`) is not in
 *   the seal's digest list and verify reports it as "reordered"; a sealed row that is gone is
 *   "missing"; a sealed row whose content changed is "altered". A row of a tenant that appears below
 *   the sealing frontier but above that tenant's last seal (no tick could have missed it) is
 *   "reordered" too. An owner inserting a brand-new row is indistinguishable from a normal insert:
 *   appending is what the trail allows.
 * - Retention drops whole months: verify excuses sealed rows that are gone if they are older than
 *   the newest `droppedBefore` of an `audit.retention_applied` event.
 * - Transaction ids are per cluster: after a logical restore into another cluster (pg_dump), new ids
 *   may be lower than sealed ones; the sealer refuses with a clear error instead of sealing wrongly.
 * - Anyone with the owner's rights can recompute every seal; keep the last `sealHash` of each tenant
 *   (verify returns them) somewhere the database cannot write to pin history against that.
 *
 * Several instances may seal at once: each tick takes a transaction-level advisory lock, and a tick
 * that cannot get it skips (another instance is sealing the same rows). Writers never take it.
 *
 * A backlog (a sealer that was off, a bulk import) is sealed in bounded chunks, each in a transaction
 * of its own: a chunk ends at a txid boundary after about `SEAL_CHUNK_ROWS` rows, just past the
 * transaction that row belongs to (a transaction's rows are never split, so a chunk holds at most
 * `SEAL_CHUNK_ROWS` plus one transaction's rows), and every tenant with rows below that boundary
 * gets a seal up to it. Each chunk stays well inside the API's statement and
 * transaction deadlines however long the backlog is, and holds the sealing lock only that long.
 *
 * Several databases: every database of the topology may hold audit rows (a tenant moved to a
 * database of its own writes its events there). Each database's trail is sealed, chained and
 * verified on its own (`context.everywhere`), with its own transaction ids — those of two clusters
 * cannot be compared, so a tenant move does not replicate the trail: at the move's switch the
 * tenant's history is sealed on the source, copied to the target with fresh ids and txids, and
 * anchored there by a seal whose prev_seal_hash is the source chain's head (history-move.ts).
 * Verification is in verify.ts.
 */
import { sql } from "drizzle-orm";
import type { ModuleContext } from "../../db/module.js";
import type { Database } from "../../db/unit-of-work.js";
import { transientError } from "../../errors.js";
import { DigestList, MICROS, ROW_HASH, sealHash, sha256 } from "./chain.js";
import { placeName } from "./internal.js";

/** Fixed, arbitrary: every sealer of one database takes the same lock (the migrator's key + 1). */
export const SEAL_LOCK_KEY = 7_246_155_348;
const CURSOR_ROWS = 2000;
/** Rows sealed per transaction, about (see the header). */
export const SEAL_CHUNK_ROWS = 50_000;

/** One database's sealing tick. */
export interface DatabaseSealResult {
  /** False when another instance held this database's sealing lock. */
  locked: boolean;
  seals: number;
  rows: number;
  /** Every row of this database below this transaction id (of its cluster) is sealed. */
  horizon: string;
  /** Final rows above `horizon` wait for the next chunk (the tick stopped at `SEAL_CHUNK_ROWS`). */
  more: boolean;
}

export interface SealResult {
  /** False when another instance held the sealing lock of a database (that database was skipped). */
  locked: boolean;
  /** Totals over every database. */
  seals: number;
  rows: number;
  databases: Record<string, DatabaseSealResult>;
}

type Sealed = { result: DatabaseSealResult } | { error: Error };

/**
 * Seals the committed, not yet sealed rows of every tenant in every database of the topology: one
 * seal per tenant and database with new rows, chained to that tenant's previous seal there. Safe
 * to run from several instances at once. A database that cannot be sealed does not stop the
 * others; the error, naming it, is thrown once they are done.
 *
 * @example
 * const { seals, rows } = await sdk.audit.seal();
 */
export async function seal(context: ModuleContext): Promise<SealResult> {
  const chunk = async (): Promise<Sealed> => {
    try {
      // A savepoint: a database whose sealing fails keeps none of its chunk, and the others go on.
      return { result: await context.transaction(() => sealDatabase(context.db())) };
    } catch (error) {
      if (transientError(error)) throw error;
      return { error: error as Error };
    }
  };
  const { results, places, missing } = await context.everywhere(chunk);
  const result: SealResult = { locked: true, seals: 0, rows: 0, databases: {} };
  const failures = missing.map((gap) => `database '${gap.database}': ${gap.reason}`);
  let cause: unknown;
  for (const [i, first] of results.entries()) {
    const database = placeName(places[i]!);
    let sealed = first;
    // A backlog: one chunk per transaction until this database has caught up (or stops progressing).
    while ("result" in sealed) {
      const total = result.databases[database];
      result.databases[database] = total
        ? {
            ...sealed.result,
            seals: total.seals + sealed.result.seals,
            rows: total.rows + sealed.result.rows,
          }
        : sealed.result;
      if (!sealed.result.more || sealed.result.rows === 0) break;
      sealed = await context.at(places[i]!, chunk);
    }
    if ("error" in sealed) {
      cause ??= sealed.error;
      failures.push(`database '${database}': ${sealed.error.message}`);
      delete result.databases[database];
      continue;
    }
    const totals = result.databases[database]!;
    result.locked &&= totals.locked;
    result.seals += totals.seals;
    result.rows += totals.rows;
  }
  if (failures.length > 0) throw new Error(`audit sealing failed on ${failures.join("; ")}`, { cause });
  return result;
}

/**
 * One database's tick, in a transaction on `db` that sees every tenant's rows (the unit `everywhere`
 * opened there, or an owner's transaction). `wait`: wait for the sealing lock (under the caller's
 * lock_timeout) instead of skipping when another instance holds it.
 */
export async function sealDatabase(db: Database, options: { wait?: boolean } = {}): Promise<DatabaseSealResult> {
  const [lock] = await db.execute<{ locked: boolean }>(
    options.wait
      ? sql`select true as locked from (select pg_advisory_xact_lock(${SEAL_LOCK_KEY})) l`
      : sql`select pg_try_advisory_xact_lock(${SEAL_LOCK_KEY}) as locked`,
  );
  const [bounds] = await db.execute<{ horizon: string; frontier: string }>(sql`
    select pg_snapshot_xmin(pg_current_snapshot())::text as horizon,
           coalesce((select max(to_txid) from audit.audit_seals), 0)::text as frontier`);
  const horizon = BigInt(bounds!.horizon);
  const frontier = BigInt(bounds!.frontier);
  if (!lock!.locked) return { locked: false, seals: 0, rows: 0, horizon: String(horizon), more: false };
  if (horizon < frontier) {
    throw new Error(
      `audit sealing refused: the oldest running transaction (${horizon}) is below the sealed frontier (${frontier}); ` +
        "this database's transaction ids restarted (a logical restore into another cluster?) — see the audit module docs",
    );
  }
  if (horizon === frontier) return { locked: true, seals: 0, rows: 0, horizon: String(horizon), more: false };
  const to = await chunkEnd(db, frontier, horizon);

  // A server-side cursor keeps memory flat however many rows wait. The bounds are bigints the
  // server gave: written as literals, since a cursor's query is planned once, as declared.
  const tenants = new Map<string | null, DigestList>();
  await db.execute(sql`declare audit_seal_rows no scroll cursor for
    select tenant_id, id::text as id, ${sql.raw(MICROS)} as micros, ${sql.raw(ROW_HASH)} as hash
    from audit.audit_logs where txid >= ${sql.raw(String(frontier))} and txid < ${sql.raw(String(to))}
    order by audit_logs.tenant_id nulls first, audit_logs.id`);
  for (;;) {
    const rows = await db.execute<{ tenant_id: string | null; id: string; micros: string; hash: Buffer }>(
      sql`fetch ${sql.raw(String(CURSOR_ROWS))} from audit_seal_rows`,
    );
    for (const row of rows) {
      let list = tenants.get(row.tenant_id);
      if (!list) tenants.set(row.tenant_id, (list = new DigestList()));
      list.push(BigInt(row.id), BigInt(row.micros), row.hash);
    }
    if (rows.length < CURSOR_ROWS) break;
  }
  await db.execute(sql`close audit_seal_rows`);

  let rows = 0;
  for (const [tenantId, list] of tenants) {
    // The tenant's last seal, an anchor included (history-move.ts): the chain continues after it.
    const [previous] = await db.execute<{ seal_hash: string; to_txid: string }>(sql`
      select seal_hash, to_txid::text from audit.audit_seals
      where ${tenantId === null ? sql`tenant_id is null` : sql`tenant_id = ${tenantId}::uuid`}
      order by id desc limit 1`);
    const digests = list.bytes();
    const next = {
      prevSealHash: previous?.seal_hash ?? null,
      tenantId,
      fromTxid: previous ? BigInt(previous.to_txid) : 0n,
      toTxid: to,
      fromId: list.firstId,
      toId: list.lastId,
      rowCount: list.count,
      rowsHash: sha256(digests),
    };
    await db.execute(sql`
      insert into audit.audit_seals
        (tenant_id, from_id, to_id, from_txid, to_txid, row_count, rows_hash, digests, prev_seal_hash, seal_hash)
      values (${tenantId}::uuid, ${String(next.fromId)}::bigint, ${String(next.toId)}::bigint, ${String(next.fromTxid)}::bigint,
        ${String(next.toTxid)}::bigint, ${next.rowCount}, ${next.rowsHash}, ${digests}::bytea, ${next.prevSealHash}, ${sealHash(next)})`);
    rows += list.count;
  }
  return { locked: true, seals: tenants.size, rows, horizon: String(to), more: to < horizon };
}

/**
 * Where this chunk ends: `horizon` when at most `SEAL_CHUNK_ROWS` final rows wait, else just past
 * the transaction of the row that many rows on. Ids follow insertion, so the rows are read in id
 * order from the last tick's highest sealed id: a bounded read of about `SEAL_CHUNK_ROWS` index
 * entries, however long the backlog (reading the whole waiting range in txid order outlived the
 * statement timeout at 1M rows). Any boundary is correct — every row below it is sealed, whatever
 * its id — so this only decides the chunk's size.
 */
async function chunkEnd(db: Database, frontier: bigint, horizon: bigint): Promise<bigint> {
  const [start] = await db.execute<{ id: string }>(sql`
    select coalesce(max(to_id), 0)::text as id from audit.audit_seals where to_txid = ${String(frontier)}::bigint`);
  const [cut] = await db.execute<{ txid: string }>(sql`
    select txid::text from audit.audit_logs
    where id > ${start!.id}::bigint and txid >= ${String(frontier)}::bigint and txid < ${String(horizon)}::bigint
    order by id offset ${SEAL_CHUNK_ROWS} limit 1`);
  return cut ? BigInt(cut.txid) + 1n : horizon;
}

/** The background sealing loop: the one piece of the module with state of its own. */
export interface Sealer {
  startSealer(options?: { intervalMs?: number; onError?: (error: unknown) => void }): void;
  stop(): Promise<void>;
}

export function createSealer(context: ModuleContext): Sealer {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = true;

  /**
   * Seals in the background every `intervalMs` (default 10 s) until `stop()`. Errors go to `onError`
   * and the loop keeps going. Calling it twice keeps one loop.
   */
  function startSealer(options: { intervalMs?: number; onError?: (error: unknown) => void } = {}) {
    if (!stopped) return;
    stopped = false;
    const interval = options.intervalMs ?? 10_000;
    const tick = () => {
      running = seal(context)
        .catch((error) => options.onError?.(error))
        .finally(() => {
          running = undefined;
          if (!stopped) {
            timer = setTimeout(tick, interval);
            timer.unref();
          }
        });
    };
    timer = setTimeout(tick, interval);
    timer.unref();
  }

  /** Stops the sealing loop and waits for a tick in progress. Idempotent. */
  async function stop() {
    stopped = true;
    if (timer) clearTimeout(timer);
    timer = undefined;
    await running;
  }

  return { startSealer, stop };
}
