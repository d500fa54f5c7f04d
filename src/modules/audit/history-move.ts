/**
 * A moved tenant's audit history moves with it. The tenant move (src/db/tenant-move.ts) does not
 * replicate the trail — its seals are bound to the writing cluster's transaction ids — and calls this
 * module's `onTenantSwitched` hook at its switch, once the tenant's writes go to the target:
 *
 * 1. The source is sealed until every row of the tenant there is sealed: the source chain's head
 *    (its last seal) then covers the tenant's whole history on the source.
 * 2. That chain is verified on the source, and in one transaction on the target (holding the target's
 *    sealing lock) the rows are copied — occurred_at and content kept, id and txid the target's —
 *    with an anchor seal: its `prev_seal_hash` is the source head, its `anchor` records the source
 *    database, the local seal it follows (`previous`), the copy's transaction (`copyTxid`) and a hash
 *    of the rows' contents, equal on both sides before the commit. It seals the copied rows (digests
 *    of their target ids and hashes), so verify names a copied row altered or removed from then on.
 * 3. In one transaction on the source, the tenant's rows and seals covered by that head leave the
 *    live tables for the move's retained copy (deleted by `tenant:move --finalize`, put back nowhere:
 *    the history lives on the target now), and a platform event `audit.history_moved` there records
 *    it. The source's verify sees neither the rows nor their seals, so it reports nothing missing,
 *    and reads — which merge every database — show the history once.
 *
 * Chain order on the target: the anchor follows the tenant's previous seal there (if the tenant had
 * sealed events there: `anchor.previous`) and covers an empty txid range at that seal's end, so the
 * next tick seals, chained after the anchor, every row of the tenant written since — the events the
 * tenant wrote on the target after the flip and the copied rows alike (each once more), in id order.
 * A move back is the same walk the other way: the history (anchor and all) is copied again, anchored
 * on the head of the chain it had on this database.
 *
 * Crashes: the copy and its anchor commit together; a rerun (`--resume`) finds the anchor naming the
 * source head and goes straight to step 3, which is one transaction too. Between the target's commit
 * and the source's, reads would show the history twice (until the rerun, after a crash).
 * An event that reaches the source after step 1 (a unit that read the tenant's placement before the
 * flip) is not covered by the head: it stays on the source, sealed there in a chain of its own.
 */
import { sql } from "drizzle-orm";
import type { TenantSwitch } from "../../db/module.js";
import type { Database } from "../../db/unit-of-work.js";
import { anchorSealHash, CONTENT_TEXT, DigestList, MICROS, ROW_HASH, sha256 } from "./chain.js";
import { recordAuditEventOn } from "./record.js";
import type { SealAnchor } from "./schema.js";
import { SEAL_LOCK_KEY, sealDatabase } from "./seal.js";
import { verifyDatabase } from "./verify.js";

const COPY_ROWS = 1000;
const SEAL_WAIT_MS = 30_000;
const COLUMNS = `occurred_at, tenant_id, actor_type, actor_id, action, target_type, target_id, ip, user_agent,
  request_id, metadata, changes`;

interface Head {
  id: string;
  sealHash: string;
  toTxid: string;
}

/** Every statement of the hook's transactions has a deadline. */
async function withDeadlines(db: Database): Promise<void> {
  await db.execute(sql`select set_config('statement_timeout', '60s', true), set_config('lock_timeout', '10s', true),
    set_config('idle_in_transaction_session_timeout', '60s', true)`);
}

/**
 * The audit module's `onTenantSwitched` hook: moves the tenant's history from `move.from` to
 * `move.to` (see the file's header). Idempotent.
 */
export async function moveTenantHistory(move: TenantSwitch): Promise<void> {
  const { tenantId, from, to, source, target } = move;
  const head = await sealTenant(source, tenantId);
  if (!head) {
    move.report(`switched: no audit history of the tenant on '${from}' to move`);
    return;
  }
  const [anchored] = await target.execute<{ rows: number }>(sql`
    select row_count as rows from audit.audit_seals
    where tenant_id = ${tenantId}::uuid and anchor->>'from' = ${from} and prev_seal_hash = ${head.sealHash}`);
  const copied = anchored ? anchored.rows : await copyHistory(move, head);
  const retained = await source.transaction(async (tx) => {
    await withDeadlines(tx);
    // The append-only guard lets the owner delete this tenant's rows in this transaction only (drizzle/0021).
    await tx.execute(sql`select set_config('sv.audit_history_moving', ${tenantId}, true)`);
    const rows = await move.retain(
      tx,
      "audit_logs",
      sql`t.tenant_id = ${tenantId}::uuid and t.txid < ${head.toTxid}::bigint`,
    );
    const seals = await move.retain(
      tx,
      "audit_seals",
      sql`t.tenant_id = ${tenantId}::uuid and t.id <= ${head.id}::bigint`,
    );
    await recordAuditEventOn(tx, {
      action: "audit.history_moved",
      tenantId: null,
      actor: { type: "system", id: "tenant:move" },
      target: { type: "tenant", id: tenantId },
      metadata: { tenantId, to, sourceHead: head.sealHash, rows, seals },
    });
    return rows;
  });
  move.report(
    `switched: audit history moved to '${to}' (${copied} rows, anchored on ${head.sealHash.slice(0, 12)}…); ${retained} rows set aside on '${from}' until --finalize`,
  );
}

/** Seals `db` until the tenant has no unsealed row there; its last seal, or none without history. */
async function sealTenant(db: Database, tenantId: string): Promise<Head | undefined> {
  const deadline = Date.now() + SEAL_WAIT_MS;
  for (;;) {
    let more = false;
    await db.transaction(async (tx) => {
      await withDeadlines(tx);
      more = (await sealDatabase(tx, { wait: true })).more;
    });
    const [state] = await db.execute<{
      id: string | null;
      seal_hash: string | null;
      to_txid: string | null;
      unsealed: number;
    }>(sql`
      with head as (select id, seal_hash, to_txid from audit.audit_seals where tenant_id = ${tenantId}::uuid order by id desc limit 1)
      select (select id::text from head) as id, (select seal_hash from head) as seal_hash, (select to_txid::text from head) as to_txid,
             (select count(*)::int from audit.audit_logs where tenant_id = ${tenantId}::uuid
                and txid >= coalesce((select to_txid from head), 0)) as unsealed`);
    if (state!.unsealed === 0)
      return state!.id ? { id: state!.id, sealHash: state!.seal_hash!, toTxid: state!.to_txid! } : undefined;
    if (Date.now() > deadline) {
      throw new Error(
        `the tenant's audit rows on the source stayed unsealed for ${SEAL_WAIT_MS / 1000} s (a long transaction holds the sealing horizon back): tenant:move --resume retries`,
      );
    }
    // A backlog seals chunk after chunk at once; a horizon held back by a long transaction is waited for.
    if (!more) await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The sha256 of the contents of the tenant's rows matching `where`, in id order (the same on both sides). */
async function contentHash(db: Database, tenantId: string, where: ReturnType<typeof sql>) {
  const [row] = await db.execute<{ n: number; hash: string }>(sql`
    select count(*)::int as n,
           encode(sha256(convert_to(coalesce(string_agg(encode(sha256(convert_to(${sql.raw(CONTENT_TEXT)}, 'UTF8')), 'hex'), ''
             order by audit_logs.id), ''), 'UTF8')), 'hex') as hash
    from audit.audit_logs where tenant_id = ${tenantId}::uuid and ${where}`);
  return row!;
}

/** Step 2: verifies the source chain, copies the rows and writes the anchor, in one target transaction. */
async function copyHistory(move: TenantSwitch, head: Head): Promise<number> {
  const { tenantId, from, source, target } = move;
  const onSource = sql`txid < ${head.toTxid}::bigint`;
  return target.transaction(async (ttx) => {
    await withDeadlines(ttx);
    // No tick of the target's sealer runs meanwhile: the anchor follows the tenant's last seal there.
    await ttx.execute(sql`select pg_advisory_xact_lock(${SEAL_LOCK_KEY})`);
    const [previous] = await ttx.execute<{ seal_hash: string; to_txid: string }>(sql`
      select seal_hash, to_txid::text from audit.audit_seals where tenant_id = ${tenantId}::uuid order by id desc limit 1`);
    const expected = await source.transaction(
      async (stx) => {
        await withDeadlines(stx);
        const verified = await verifyDatabase(stx, { tenantId });
        if (!verified.ok) {
          throw new Error(
            `the tenant's audit trail on '${from}' does not verify (${verified.detail}): its history is not moved; repair it, then tenant:move --resume`,
          );
        }
        let after = "0";
        for (;;) {
          const [batch] = await stx.execute<{ rows: string | null; last: string | null }>(sql`
            select json_agg(r order by r.id)::text as rows, max(r.id)::text as last from (
              select id, ${sql.raw(COLUMNS)} from audit.audit_logs
              where tenant_id = ${tenantId}::uuid and ${onSource} and id > ${after}::bigint
              order by audit_logs.id limit ${COPY_ROWS}) r`);
          if (!batch?.rows) break;
          await ttx.execute(sql`
            insert into audit.audit_logs (${sql.raw(COLUMNS)})
            select ${sql.raw(
              COLUMNS.split(",")
                .map((c) => `r.${c.trim()}`)
                .join(", "),
            )}
            from jsonb_array_elements(${batch.rows}::jsonb) with ordinality e(v, n),
                 jsonb_populate_record(null::audit.audit_logs, e.v) r
            order by e.n`);
          after = batch.last!;
        }
        return contentHash(stx, tenantId, onSource);
      },
      { isolationLevel: "repeatable read", accessMode: "read only" },
    );
    const copy = sql`txid = pg_current_xact_id()::text::bigint`;
    const actual = await contentHash(ttx, tenantId, copy);
    if (actual.n !== expected.n || actual.hash !== expected.hash) {
      throw new Error(
        `the copied audit history differs from the source's (${actual.n} rows, ${actual.hash} on the target; ${expected.n}, ${expected.hash} on '${from}'): nothing was kept`,
      );
    }
    const list = new DigestList();
    const rows = await ttx.execute<{ id: string; micros: string; hash: Buffer }>(sql`
      select id::text as id, ${sql.raw(MICROS)} as micros, ${sql.raw(ROW_HASH)} as hash from audit.audit_logs
      where tenant_id = ${tenantId}::uuid and ${copy} order by audit_logs.id`);
    for (const row of rows) list.push(BigInt(row.id), BigInt(row.micros), row.hash);
    const [txid] = await ttx.execute<{ txid: string }>(sql`select pg_current_xact_id()::text as txid`);
    const anchor: SealAnchor = {
      from,
      copyTxid: txid!.txid,
      previous: previous?.seal_hash ?? null,
      contentHash: expected.hash,
    };
    const at = previous ? BigInt(previous.to_txid) : 0n;
    const digests = list.bytes();
    const fields = {
      ...{ prevSealHash: head.sealHash, tenantId, fromTxid: at, toTxid: at, fromId: list.firstId, toId: list.lastId },
      ...{ rowCount: list.count, rowsHash: sha256(digests) },
    };
    await ttx.execute(sql`
      insert into audit.audit_seals
        (tenant_id, from_id, to_id, from_txid, to_txid, row_count, rows_hash, digests, prev_seal_hash, seal_hash, anchor)
      values (${tenantId}::uuid, ${String(fields.fromId)}::bigint, ${String(fields.toId)}::bigint, ${String(at)}::bigint,
        ${String(at)}::bigint, ${fields.rowCount}, ${fields.rowsHash}, ${digests}::bytea, ${head.sealHash},
        ${anchorSealHash(fields, anchor)}, ${JSON.stringify(anchor)}::jsonb)`);
    return list.count;
  });
}
