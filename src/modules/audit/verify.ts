/**
 * Verifying the seal chains (see seal.ts for what a seal covers): every seal of every tenant follows
 * the previous one, matches its own contents, and the rows it covers are the rows still there —
 * unless retention dropped them. Each database's trail is checked on its own, in one consistent
 * snapshot.
 *
 * An anchor seal (a tenant's history moved in from another database, history-move.ts) follows the
 * tenant's previous seal here through `anchor.previous` and names the source chain's head in its
 * `prev_seal_hash`: it is accepted as a chain start and reported in `anchors`. It seals the copied
 * rows (those of transaction `copyTxid`) like any seal, so a copied row altered or removed is named.
 */
import { sql } from "drizzle-orm";
import type { ModuleContext } from "../../db/module.js";
import type { Database } from "../../db/unit-of-work.js";
import { anchorSealHash, DIGEST_BYTES, MICROS, readDigest, ROW_HASH, sealHash, sha256 } from "./chain.js";
import { placeName, requireComplete } from "./internal.js";
import type { SealAnchor } from "./schema.js";

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
  /**
   * Histories moved in from another database: the anchor seal continues the chain whose head was
   * `sourceHead` on the database `from` (pin that head too, or find it in `from`'s report before).
   */
  anchors: { tenant: string; from: string; sourceHead: string; rows: number }[];
}

export type VerifyResult =
  | ({
      ok: true;
      /** Per database: a tenant moved between databases has a chain in each. */
      databases: Record<string, DatabaseVerifyReport>;
      /** Every database's anchors (histories moved in), with the database holding each. */
      anchors: (DatabaseVerifyReport["anchors"][number] & { database: string })[];
    } & Omit<DatabaseVerifyReport, "heads" | "anchors">)
  | {
      ok: false;
      /** The database whose trail is broken (the first one found, the audit schema's own first). */
      database: string;
      firstBadRow: { id: string; reason: BadRowReason };
      tenantId: string | null;
      sealId: string;
      detail: string;
      rows: number;
      seals: number;
    };

export type DatabaseVerifyResult =
  | ({ ok: true } & DatabaseVerifyReport)
  | Omit<Extract<VerifyResult, { ok: false }>, "database">;

/**
 * How long one database's verification may take. It reads the whole trail in one snapshot, so it
 * cannot be cut into the API's 30 s units: at the ~38k rows/s measured here that is ~30M rows.
 * Each statement still has the pool's statement timeout (a seal's rows are one statement; sealing
 * in chunks keeps them small).
 */
const VERIFY_TIMEOUT_MS = 15 * 60_000;
const NO_TENANT = "00000000-0000-0000-0000-000000000000";

/**
 * Checks every seal chain and every sealed row of every database of the topology, and names the
 * database and the first altered, missing or reordered row. Reads as the runtime role across all
 * tenants, in one consistent snapshot per database.
 *
 * @example
 * const result = await sdk.audit.verify();
 * if (!result.ok) console.error(result.database, result.firstBadRow); // the database, then { id: "1042", reason: "altered" }
 */
export async function verify(context: ModuleContext): Promise<VerifyResult> {
  const { results, places, missing } = await context.everywhere(() => verifyDatabase(context.db()), {
    isolation: "repeatable read",
    readOnly: true,
    timeoutMs: VERIFY_TIMEOUT_MS,
  });
  // A trail that could not be read is not an intact one.
  requireComplete(missing);
  const totals = { rows: 0, seals: 0, unsealedRows: 0, retiredRows: 0 };
  const databases: Record<string, DatabaseVerifyReport> = {};
  const anchors: Extract<VerifyResult, { ok: true }>["anchors"] = [];
  for (const [i, result] of results.entries()) {
    const database = placeName(places[i]!);
    if (!result.ok) return { ...result, database, rows: totals.rows + result.rows, seals: totals.seals + result.seals };
    const { ok: _ok, ...report } = result;
    databases[database] = report;
    totals.rows += report.rows;
    totals.seals += report.seals;
    totals.unsealedRows += report.unsealedRows;
    totals.retiredRows += report.retiredRows;
    anchors.push(...report.anchors.map((a) => ({ ...a, database })));
  }
  return { ok: true, ...totals, anchors, databases };
}

/**
 * One database's trail, in a repeatable-read transaction on `db` that sees every tenant's rows (the
 * unit `everywhere` opened there, or an owner's). `tenantId`: that tenant's chain only.
 */
export async function verifyDatabase(db: Database, options: { tenantId?: string } = {}): Promise<DatabaseVerifyResult> {
  const only = options.tenantId === undefined ? sql`true` : sql`tenant_id = ${options.tenantId}::uuid`;
  const [retention] = await db.execute<{ micros: string | null }>(sql`
    select (extract(epoch from max((metadata->>'droppedBefore')::timestamptz)) * 1000000)::bigint::text as micros
    from audit.audit_logs where tenant_id is null and action = 'audit.retention_applied'`);
  const retiredBefore = retention?.micros ? BigInt(retention.micros) : null;

  const chains = new Map<string | null, { hash: string; toTxid: bigint }>();
  let rows = 0;
  let seals = 0;
  let retiredRows = 0;
  let lastSealId = 0n;
  const anchors: DatabaseVerifyReport["anchors"] = [];
  for (;;) {
    const page = await db.execute<{
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
      anchor: SealAnchor | null;
    }>(sql`
      select id::text, tenant_id, from_id::text, to_id::text, from_txid::text, to_txid::text, row_count,
             rows_hash, digests, prev_seal_hash, seal_hash, anchor
      from audit.audit_seals where audit_seals.id > ${String(lastSealId)}::bigint and ${only}
      order by audit_seals.id limit 200`);
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
      const anchor = s.anchor;
      // An anchor follows the local chain through `anchor.previous` (its prev_seal_hash is the source's head) and covers no txid range.
      const follows = anchor
        ? (previous?.hash ?? null) === anchor.previous && fields.toTxid === fields.fromTxid
        : (previous?.hash ?? null) === s.prev_seal_hash;
      if (!follows || fields.fromTxid !== (previous?.toTxid ?? 0n)) {
        return fail(
          s.from_id,
          "missing",
          `seal ${s.id} does not follow the previous seal of its tenant: a seal is missing or was rewritten`,
        );
      }
      if (
        (anchor ? anchorSealHash(fields, anchor) : sealHash(fields)) !== s.seal_hash ||
        sha256(s.digests) !== s.rows_hash ||
        s.digests.length !== s.row_count * DIGEST_BYTES
      ) {
        return fail(s.from_id, "altered", `seal ${s.id} does not match its own contents: the seal was rewritten`);
      }
      chains.set(tenantId, { hash: s.seal_hash, toTxid: fields.toTxid });
      if (anchor)
        anchors.push({
          tenant: tenantId ?? "platform",
          from: anchor.from,
          sourceHead: s.prev_seal_hash ?? "",
          rows: s.row_count,
        });

      // An ordinary seal covers its tenant's rows of a txid range; an anchor, the rows its copy wrote.
      const covered = anchor
        ? sql`txid = ${anchor.copyTxid}::bigint`
        : sql`txid >= ${s.from_txid}::bigint and txid < ${s.to_txid}::bigint`;
      const present = await db.execute<{ id: string; micros: string; hash: Buffer }>(sql`
        select id::text as id, ${sql.raw(MICROS)} as micros, ${sql.raw(ROW_HASH)} as hash from audit.audit_logs
        where ${tenantId === null ? sql`tenant_id is null` : sql`tenant_id = ${tenantId}::uuid`} and ${covered}
        order by audit_logs.id`);
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
          return fail(
            rowId!,
            "reordered",
            `row ${rowId} appeared inside the sealed range of seal ${s.id} after it was sealed`,
          );
        }
      }
    }
  }

  // Rows of a tenant between its last seal and the frontier: every tick since then saw that
  // range and found none, so such a row was slipped into sealed history.
  const frontier = [...chains.values()].reduce((max, c) => (c.toTxid > max ? c.toTxid : max), 0n);
  // biome-ignore lint/complexity/useMathMinMax: bigints (Math.min takes numbers)
  const lowest = [...chains.values()].reduce((min, c) => (c.toTxid < min ? c.toTxid : min), frontier);
  if (frontier > 0n) {
    const [intruder] = await db.execute<{ id: string; tenant_id: string | null }>(
      intruderStatement(lowest, frontier, options.tenantId),
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
  const [unsealed] = await db.execute<{ n: number }>(sql`
    select count(*)::int as n from audit.audit_logs where ${only} and txid >= ${String(frontier)}::bigint`);
  const heads = Object.fromEntries([...chains].map(([tenant, c]) => [tenant ?? "platform", c.hash]));
  return { ok: true, rows, seals, unsealedRows: unsealed!.n, retiredRows, heads, anchors };
}

/**
 * The first row, in id order, of a tenant's txid range between its last seal and the frontier
 * (`lowest`: the lowest last seal of any tenant). A join the planner can hash (platform rows, tenant
 * null, keyed by the nil uuid), planned apart from the LIMIT (materialized): under it the planner
 * bets on an early match and looks up every row's tenant one by one — where, as normally, none
 * matches, that read every row of the range times every tenant, and passed the statement timeout
 * at 1M rows (verify-plan.test.ts).
 */
export function intruderStatement(lowest: bigint, frontier: bigint, tenantId?: string) {
  return sql`
    with last as (select distinct on (tenant_id) tenant_id, to_txid from audit.audit_seals order by tenant_id, id desc),
    intruders as materialized (
      select l.id, l.tenant_id from audit.audit_logs l
      left join last on coalesce(last.tenant_id, ${NO_TENANT}::uuid) = coalesce(l.tenant_id, ${NO_TENANT}::uuid)
      where ${tenantId === undefined ? sql`true` : sql`l.tenant_id = ${tenantId}::uuid`}
        and l.txid >= ${String(lowest)}::bigint and l.txid < ${String(frontier)}::bigint
        and l.txid >= coalesce(last.to_txid, 0))
    select id::text as id, tenant_id from intruders order by id limit 1`;
}
