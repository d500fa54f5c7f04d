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
 * Several databases: every database of the topology may hold audit rows (a tenant moved to a
 * database of its own writes its events there; its older events stay where they were written). Each
 * database's trail is sealed, chained and verified on its own, with its own transaction ids — those
 * of two clusters cannot be compared, which is also why a tenant move does not copy the trail.
 */
import type postgres from "postgres";
import type { Router } from "../../db/router.js";
import { DIGEST_BYTES, DigestList, MICROS, readDigest, ROW_HASH, sealHash, sha256 } from "./chain.js";

/** Fixed, arbitrary: every sealer of one database takes the same lock (the migrator's key + 1). */
const SEAL_LOCK_KEY = 7_246_155_348;
const CURSOR_ROWS = 2000;

/** One database's sealing tick. */
export interface DatabaseSealResult {
  /** False when another instance held this database's sealing lock. */
  locked: boolean;
  seals: number;
  rows: number;
  /** Transactions below this id (of this database's cluster) were final when the tick ran. */
  horizon: string;
}

export interface SealResult {
  /** False when another instance held the sealing lock of a database (that database was skipped). */
  locked: boolean;
  /** Totals over every database. */
  seals: number;
  rows: number;
  databases: Record<string, DatabaseSealResult>;
}

export type BadRowReason = "altered" | "missing" | "reordered";

/** One database's intact trail. */
export interface DatabaseVerifyReport {
  /** Sealed rows checked. */
  rows: number;
  seals: number;
  /** Rows not sealed yet (written since the last tick, or still behind the horizon). */
  unsealedRows: number;
  /** Sealed rows gone with partitions dropped by retention. */
  retiredRows: number;
  /** The last seal hash of each tenant (`"platform"` for platform rows): pin them elsewhere. */
  heads: Record<string, string>;
}

export type VerifyResult =
  | ({
      ok: true;
      /** Per database: a tenant moved between databases has a chain in each. */
      databases: Record<string, DatabaseVerifyReport>;
    } & Omit<DatabaseVerifyReport, "heads">)
  | {
      ok: false;
      /** The database whose trail is broken (the first one found, in `router.databases()` order). */
      database: string;
      firstBadRow: { id: string; reason: BadRowReason };
      tenantId: string | null;
      sealId: string;
      detail: string;
      rows: number;
      seals: number;
    };

type DatabaseVerifyResult = ({ ok: true } & DatabaseVerifyReport) | Omit<Extract<VerifyResult, { ok: false }>, "database">;

/** A transaction on one database's pool (as sv_app) that sees every tenant's rows. */
async function platformTransaction<T>(sql: postgres.Sql, mode: string, fn: (tx: postgres.TransactionSql) => Promise<T>) {
  return sql.begin(mode, async (tx) => {
    await tx`select set_config('sv.tenant_id', '*', true)`;
    return fn(tx);
  }) as Promise<T>;
}

export function createSealing(router: Router) {
  const pool = (database: string) => router.pool(database).sql;

  /**
   * Seals the committed, not yet sealed rows of every tenant in every database of the topology: one
   * seal per tenant and database with new rows, chained to that tenant's previous seal there. Safe
   * to run from several instances at once. A database that cannot be sealed does not stop the
   * others; the error, naming it, is thrown once they are done.
   *
   * @example
   * const { seals, rows } = await sdk.audit.seal();
   */
  async function seal(): Promise<SealResult> {
    const result: SealResult = { locked: true, seals: 0, rows: 0, databases: {} };
    const failures: string[] = [];
    let cause: unknown;
    for (const database of router.databases()) {
      try {
        const one = await sealDatabase(database);
        result.databases[database] = one;
        result.locked &&= one.locked;
        result.seals += one.seals;
        result.rows += one.rows;
      } catch (error) {
        cause ??= error;
        failures.push(`database '${database}': ${(error as Error).message}`);
      }
    }
    if (failures.length > 0) throw new Error(`audit sealing failed on ${failures.join("; ")}`, { cause });
    return result;
  }

  async function sealDatabase(database: string): Promise<DatabaseSealResult> {
    return platformTransaction(pool(database), "read write", async (tx) => {
      const [lock] = await tx<{ locked: boolean }[]>`select pg_try_advisory_xact_lock(${SEAL_LOCK_KEY}) as locked`;
      const [bounds] = await tx<{ horizon: string; frontier: string }[]>`
        select pg_snapshot_xmin(pg_current_snapshot())::text as horizon,
               coalesce((select max(to_txid) from audit.audit_seals), 0)::text as frontier`;
      const horizon = BigInt(bounds!.horizon);
      const frontier = BigInt(bounds!.frontier);
      if (!lock!.locked) return { locked: false, seals: 0, rows: 0, horizon: String(horizon) };
      if (horizon < frontier) {
        throw new Error(
          `audit sealing refused: the oldest running transaction (${horizon}) is below the sealed frontier (${frontier}); ` +
            "this database's transaction ids restarted (a logical restore into another cluster?) — see the audit module docs",
        );
      }
      if (horizon === frontier) return { locked: true, seals: 0, rows: 0, horizon: String(horizon) };

      // Collect first, write after: a connection cannot run queries while its cursor is open.
      const tenants = new Map<string | null, DigestList>();
      const cursor = tx.unsafe<{ tenant_id: string | null; id: string; micros: string; hash: Buffer }[]>(
        `select tenant_id, id::text as id, ${MICROS} as micros, ${ROW_HASH} as hash
         from audit.audit_logs where txid >= $1 and txid < $2 order by audit_logs.tenant_id nulls first, audit_logs.id`,
        [String(frontier), String(horizon)],
      );
      for await (const rows of cursor.cursor(CURSOR_ROWS)) {
        for (const row of rows) {
          let list = tenants.get(row.tenant_id);
          if (!list) tenants.set(row.tenant_id, (list = new DigestList()));
          list.push(BigInt(row.id), BigInt(row.micros), row.hash);
        }
      }

      let rows = 0;
      for (const [tenantId, list] of tenants) {
        const [previous] = await tx<{ seal_hash: string; to_txid: string }[]>`
          select seal_hash, to_txid::text from audit.audit_seals
          where ${tenantId === null ? tx`tenant_id is null` : tx`tenant_id = ${tenantId}`}
          order by id desc limit 1`;
        const digests = list.bytes();
        const next = {
          prevSealHash: previous?.seal_hash ?? null,
          tenantId,
          fromTxid: previous ? BigInt(previous.to_txid) : 0n,
          toTxid: horizon,
          fromId: list.firstId,
          toId: list.lastId,
          rowCount: list.count,
          rowsHash: sha256(digests),
        };
        await tx`
          insert into audit.audit_seals
            (tenant_id, from_id, to_id, from_txid, to_txid, row_count, rows_hash, digests, prev_seal_hash, seal_hash)
          values (${tenantId}, ${String(next.fromId)}, ${String(next.toId)}, ${String(next.fromTxid)},
            ${String(next.toTxid)}, ${next.rowCount}, ${next.rowsHash}, ${digests}, ${next.prevSealHash}, ${sealHash(next)})`;
        rows += list.count;
      }
      return { locked: true, seals: tenants.size, rows, horizon: String(horizon) };
    });
  }

  /**
   * Checks every seal chain and every sealed row of every database of the topology, and names the
   * database and the first altered, missing or reordered row. Reads as the runtime role across all
   * tenants, in one consistent snapshot per database.
   *
   * @example
   * const result = await sdk.audit.verify();
   * if (!result.ok) console.error(result.database, result.firstBadRow); // "main" { id: "1042", reason: "altered" }
   */
  async function verify(): Promise<VerifyResult> {
    const totals = { rows: 0, seals: 0, unsealedRows: 0, retiredRows: 0 };
    const databases: Record<string, DatabaseVerifyReport> = {};
    for (const database of router.databases()) {
      const result = await verifyDatabase(database);
      if (!result.ok) return { ...result, database, rows: totals.rows + result.rows, seals: totals.seals + result.seals };
      const { ok: _ok, ...report } = result;
      databases[database] = report;
      totals.rows += report.rows;
      totals.seals += report.seals;
      totals.unsealedRows += report.unsealedRows;
      totals.retiredRows += report.retiredRows;
    }
    return { ok: true, ...totals, databases };
  }

  async function verifyDatabase(database: string): Promise<DatabaseVerifyResult> {
    return platformTransaction(pool(database), "isolation level repeatable read read only", async (tx) => {
      const [retention] = await tx<{ micros: string | null }[]>`
        select (extract(epoch from max((metadata->>'droppedBefore')::timestamptz)) * 1000000)::bigint::text as micros
        from audit.audit_logs where tenant_id is null and action = 'audit.retention_applied'`;
      const retiredBefore = retention?.micros ? BigInt(retention.micros) : null;

      const chains = new Map<string | null, { hash: string; toTxid: bigint }>();
      let rows = 0;
      let seals = 0;
      let retiredRows = 0;
      let lastSealId = 0n;
      for (;;) {
        const page = await tx<
          {
            id: string;
            tenant_id: string | null;
            from_id: string;
            to_id: string;
            from_txid: string;
            to_txid: string;
            row_count: number;
            rows_hash: string;
            digests: Buffer;
            prev_seal_hash: string | null;
            seal_hash: string;
          }[]
        >`
          select id::text, tenant_id, from_id::text, to_id::text, from_txid::text, to_txid::text, row_count,
                 rows_hash, digests, prev_seal_hash, seal_hash
          from audit.audit_seals where audit_seals.id > ${String(lastSealId)} order by audit_seals.id limit 200`;
        if (page.length === 0) break;
        for (const s of page) {
          lastSealId = BigInt(s.id);
          seals++;
          const tenantId = s.tenant_id;
          const fail = (id: bigint | string, reason: BadRowReason, detail: string): DatabaseVerifyResult => ({
            ok: false,
            firstBadRow: { id: String(id), reason },
            tenantId,
            sealId: s.id,
            detail,
            rows,
            seals,
          });
          const previous = chains.get(tenantId);
          const fields = {
            prevSealHash: s.prev_seal_hash,
            tenantId,
            fromTxid: BigInt(s.from_txid),
            toTxid: BigInt(s.to_txid),
            fromId: BigInt(s.from_id),
            toId: BigInt(s.to_id),
            rowCount: s.row_count,
            rowsHash: s.rows_hash,
          };
          if ((previous?.hash ?? null) !== s.prev_seal_hash || fields.fromTxid !== (previous?.toTxid ?? 0n)) {
            return fail(s.from_id, "missing", `seal ${s.id} does not follow the previous seal of its tenant: a seal is missing or was rewritten`);
          }
          if (sealHash(fields) !== s.seal_hash || sha256(s.digests) !== s.rows_hash || s.digests.length !== s.row_count * DIGEST_BYTES) {
            return fail(s.from_id, "altered", `seal ${s.id} does not match its own contents: the seal was rewritten`);
          }
          chains.set(tenantId, { hash: s.seal_hash, toTxid: fields.toTxid });

          const present = await tx.unsafe<{ id: string; micros: string; hash: Buffer }[]>(
            `select id::text as id, ${MICROS} as micros, ${ROW_HASH} as hash from audit.audit_logs
             where ${tenantId === null ? "tenant_id is null" : "tenant_id = $3"} and txid >= $1 and txid < $2 order by audit_logs.id`,
            tenantId === null ? [s.from_txid, s.to_txid] : [s.from_txid, s.to_txid, tenantId],
          );
          let d = 0;
          let r = 0;
          while (d < s.row_count || r < present.length) {
            const sealed = d < s.row_count ? readDigest(s.digests, d) : undefined;
            const row = r < present.length ? present[r]! : undefined;
            const rowId = row ? BigInt(row.id) : undefined;
            if (sealed && rowId === sealed.id) {
              if (BigInt(row!.micros) !== sealed.micros || !row!.hash.subarray(0, 16).equals(sealed.hash)) {
                return fail(sealed.id, "altered", `row ${sealed.id} changed after it was sealed by seal ${s.id}`);
              }
              rows++;
              d++;
              r++;
            } else if (sealed && (rowId === undefined || sealed.id < rowId)) {
              if (retiredBefore !== null && sealed.micros < retiredBefore) {
                retiredRows++;
              } else {
                return fail(sealed.id, "missing", `row ${sealed.id}, sealed by seal ${s.id}, is gone`);
              }
              d++;
            } else {
              return fail(rowId!, "reordered", `row ${rowId} appeared inside the sealed range of seal ${s.id} after it was sealed`);
            }
          }
        }
      }

      // Rows of a tenant between its last seal and the frontier: every tick since then saw that
      // range and found none, so such a row was slipped into sealed history.
      const frontier = [...chains.values()].reduce((max, c) => (c.toTxid > max ? c.toTxid : max), 0n);
      const lowest = [...chains.values()].reduce((min, c) => (c.toTxid < min ? c.toTxid : min), frontier);
      if (frontier > 0n) {
        const [intruder] = await tx.unsafe<{ id: string; tenant_id: string | null }[]>(
          `with last as (select distinct on (tenant_id) tenant_id, to_txid from audit.audit_seals order by tenant_id, id desc)
           select l.id::text as id, l.tenant_id from audit.audit_logs l
           where l.txid >= $1 and l.txid < $2
             and l.txid >= coalesce((select last.to_txid from last where last.tenant_id is not distinct from l.tenant_id), 0)
           order by l.id limit 1`,
          [String(lowest), String(frontier)],
        );
        if (intruder) {
          return {
            ok: false,
            firstBadRow: { id: intruder.id, reason: "reordered" },
            tenantId: intruder.tenant_id,
            sealId: "",
            detail: `row ${intruder.id} sits below the sealing frontier but in no seal: it was inserted into sealed history`,
            rows,
            seals,
          };
        }
      }
      const [unsealed] = await tx<{ n: number }[]>`
        select count(*)::int as n from audit.audit_logs where txid >= ${String(frontier)}`;
      const heads = Object.fromEntries([...chains].map(([tenant, c]) => [tenant ?? "platform", c.hash]));
      return { ok: true, rows, seals, unsealedRows: unsealed!.n, retiredRows, heads };
    });
  }

  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = true;

  /**
   * Seals in the background every `intervalMs` (default 10 s) until `stop()`. Errors go to `onError`
   * and the loop keeps going. Calling it twice keeps one loop.
   *
   * @example
   * sdk.audit.startSealer({ intervalMs: 10_000, onError: (e) => logger.error("audit sealing failed", { error: String(e) }) });
   */
  function startSealer(options: { intervalMs?: number; onError?: (error: unknown) => void } = {}) {
    if (!stopped) return;
    stopped = false;
    const interval = options.intervalMs ?? 10_000;
    const tick = () => {
      running = seal()
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

  return { seal, verify, startSealer, stop };
}
