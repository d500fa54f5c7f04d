/**
 * The `audit` schema. `audit_logs` is append-only (grants and a trigger refuse UPDATE/DELETE/TRUNCATE
 * to the runtime role) and range-partitioned by month on `occurred_at`, so retention drops whole
 * partitions. It carries no foreign keys on purpose: the trail must outlive the users and tenants it
 * mentions, and the schema may be placed in a database of its own.
 */
import {
  bigint,
  customType,
  index,
  integer,
  jsonb,
  pgSchema,
  primaryKey,
  text,
  timestamp,
  uuid,
} from "drizzle-orm/pg-core";
import { sql } from "drizzle-orm";

export const auditSchema = pgSchema("audit");

export type ActorType = "user" | "api_key" | "system" | "service" | "webhook";

/** Where a moved history came from (`audit_seals.anchor`); see history-move.ts. */
export interface SealAnchor {
  /** The source database's name in the topology. */
  from: string;
  /** The target transaction that wrote the copied rows: the anchor seals the tenant's rows with this txid. */
  copyTxid: string;
  /** The seal hash of the tenant's previous seal on this database (null: none), which the anchor follows. */
  previous: string | null;
  /** sha256 over the copied rows' contents without id and txid, in order: equal on both sides at the copy. */
  contentHash: string;
}

const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => "bytea" });

export const auditLogs = auditSchema.table(
  "audit_logs",
  {
    id: bigint("id", { mode: "bigint" }).generatedAlwaysAsIdentity(),
    occurredAt: timestamp("occurred_at", { withTimezone: true }).notNull().defaultNow(),
    tenantId: uuid("tenant_id"),
    actorType: text("actor_type").$type<ActorType>().notNull(),
    actorId: text("actor_id"),
    action: text("action").notNull(),
    targetType: text("target_type"),
    targetId: text("target_id"),
    ip: text("ip"),
    userAgent: text("user_agent"),
    requestId: text("request_id"),
    metadata: jsonb("metadata").$type<Record<string, unknown>>(),
    changes: jsonb("changes").$type<{ before?: unknown; after?: unknown }>(),
    /**
     * The writing transaction's id (64-bit, never wraps). The sealer seals only rows whose transaction
     * is older than the oldest one still running (`pg_snapshot_xmin`), so a row is sealed only once it
     * can no longer change or appear. The runtime role has no INSERT privilege on this column: the
     * default is the only value it can get.
     */
    txid: bigint("txid", { mode: "bigint" }).notNull().default(sql`(pg_current_xact_id())::text::bigint`),
  },
  (t) => [
    primaryKey({ columns: [t.id, t.occurredAt] }),
    index("audit_logs_tenant_time_idx").on(t.tenantId, t.occurredAt, t.id),
    // Platform-wide pages and the export (every tenant, newest first): keyset pages off an index.
    index("audit_logs_time_idx").on(t.occurredAt, t.id),
    index("audit_logs_action_idx").on(t.action),
    // BRIN: transaction ids grow with insertion order, so a block-range index finds the rows of a
    // sealing window at almost no cost on the write path.
    index("audit_logs_txid_brin_idx").using("brin", t.txid),
    // Verification reads one seal's rows — a tenant's rows of a txid range — exactly. Through the
    // block ranges above it read every tenant's rows of that range (lossy), once per seal: at 1M
    // rows in 1000 seals, 100 s.
    index("audit_logs_tenant_txid_idx").on(t.tenantId, t.txid),
  ],
);

/**
 * Seals. A seal covers every row of one tenant (null = platform rows) whose `txid` is in
 * [from_txid, to_txid); consecutive seals of a tenant are contiguous in txid and chained by hash, so
 * the write path stays a plain INSERT. `digests` lists each covered row (id, occurred_at, hash prefix)
 * in id order, which lets verify name the first altered, missing or foreign row.
 */
export const auditSeals = auditSchema.table(
  "audit_seals",
  {
    id: bigint("id", { mode: "bigint" }).primaryKey().generatedAlwaysAsIdentity(),
    tenantId: uuid("tenant_id"),
    /** Smallest and largest row id covered (informational; membership is by txid). */
    fromId: bigint("from_id", { mode: "bigint" }).notNull(),
    toId: bigint("to_id", { mode: "bigint" }).notNull(),
    fromTxid: bigint("from_txid", { mode: "bigint" }).notNull(),
    toTxid: bigint("to_txid", { mode: "bigint" }).notNull(),
    rowCount: integer("row_count").notNull(),
    /** sha256 of `digests`. */
    rowsHash: text("rows_hash").notNull(),
    digests: bytea("digests").notNull(),
    prevSealHash: text("prev_seal_hash"),
    sealHash: text("seal_hash").notNull(),
    sealedAt: timestamp("sealed_at", { withTimezone: true }).notNull().defaultNow(),
    /**
     * Set on the seal that starts a tenant's history moved in from another database (history-move.ts):
     * its `prev_seal_hash` is the source chain's head, and it seals the copied rows (those written by
     * transaction `copyTxid`). Null on every ordinary seal.
     */
    anchor: jsonb("anchor").$type<SealAnchor>(),
  },
  (t) => [index("audit_seals_tenant_idx").on(t.tenantId, t.id), index("audit_seals_to_txid_idx").on(t.toTxid)],
);
