/**
 * The format of the audit seal chain, shared by sealing and verifying: how PostgreSQL hashes a row,
 * the 32-byte digest kept per sealed row, and the hash that chains one seal to the previous.
 */
import { createHash } from "node:crypto";

/** id (8) + occurred_at in µs (8) + first 16 bytes of the row's sha256. */
export const DIGEST_BYTES = 32;

/** The row hash, computed by PostgreSQL from the canonical jsonb text of every column. */
// Queries select `id::text as id`: ORDER BY must name the table's column (audit_logs.id), or it
// would sort by the text output column ('10' < '9').
export const ROW_HASH = `sha256(convert_to(jsonb_build_array(
    id::text, (extract(epoch from occurred_at) * 1000000)::bigint::text, tenant_id, actor_type, actor_id, action,
    target_type, target_id, ip, user_agent, request_id, metadata, changes, txid::text)::text, 'UTF8'))`;
export const MICROS = `(extract(epoch from occurred_at) * 1000000)::bigint::text`;

export interface RowDigest {
  id: bigint;
  micros: bigint;
  hash: Buffer;
}

export const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");

export function sealHash(seal: {
  prevSealHash: string | null;
  tenantId: string | null;
  fromTxid: bigint;
  toTxid: bigint;
  fromId: bigint;
  toId: bigint;
  rowCount: number;
  rowsHash: string;
}): string {
  return sha256(
    JSON.stringify([
      seal.prevSealHash,
      seal.tenantId,
      String(seal.fromTxid),
      String(seal.toTxid),
      String(seal.fromId),
      String(seal.toId),
      seal.rowCount,
      seal.rowsHash,
    ]),
  );
}

/**
 * A row's content without its database-bound id and txid: what a moved history keeps (history-move.ts).
 * Over alias-free `audit_logs` columns, like ROW_HASH.
 */
export const CONTENT_TEXT = `jsonb_build_array(
    (extract(epoch from occurred_at) * 1000000)::bigint::text, tenant_id, actor_type, actor_id, action,
    target_type, target_id, ip, user_agent, request_id, metadata, changes)::text`;

/**
 * An anchor seal's hash: the ordinary seal hash (its prev_seal_hash is the source chain's head) bound
 * to where the history came from, so neither can be rewritten without breaking the chain after it.
 */
export function anchorSealHash(
  fields: Parameters<typeof sealHash>[0],
  anchor: { from: string; copyTxid: string; previous: string | null; contentHash: string },
): string {
  return sha256(JSON.stringify([sealHash(fields), anchor.from, anchor.copyTxid, anchor.previous, anchor.contentHash]));
}

/** Growable buffer of 32-byte digests, one per row, in id order. */
export class DigestList {
  private buffer = Buffer.alloc(DIGEST_BYTES * 64);
  count = 0;
  firstId = 0n;
  lastId = 0n;
  push(id: bigint, micros: bigint, hash: Buffer) {
    if ((this.count + 1) * DIGEST_BYTES > this.buffer.length) {
      const grown = Buffer.alloc(this.buffer.length * 2);
      this.buffer.copy(grown);
      this.buffer = grown;
    }
    const at = this.count * DIGEST_BYTES;
    this.buffer.writeBigInt64BE(id, at);
    this.buffer.writeBigInt64BE(micros, at + 8);
    hash.copy(this.buffer, at + 16, 0, 16);
    if (this.count === 0) this.firstId = id;
    this.lastId = id;
    this.count++;
  }
  bytes(): Buffer {
    return this.buffer.subarray(0, this.count * DIGEST_BYTES);
  }
}

export function readDigest(bytes: Buffer, index: number): RowDigest {
  const at = index * DIGEST_BYTES;
  return {
    id: bytes.readBigInt64BE(at),
    micros: bytes.readBigInt64BE(at + 8),
    hash: bytes.subarray(at + 16, at + 32),
  };
}
