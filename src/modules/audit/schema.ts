/**
 * The `audit` schema. `audit_logs` is append-only (grants and a trigger refuse UPDATE/DELETE to the
 * runtime role) and range-partitioned by month on `occurred_at`, so retention drops whole partitions.
 * It carries no foreign keys on purpose: the trail must outlive the users and tenants it mentions, and
 * the schema may be placed in a database of its own.
 */
import { bigint, index, integer, jsonb, pgSchema, primaryKey, text, timestamp, uuid } from "drizzle-orm/pg-core";

export const auditSchema = pgSchema("audit");

export type ActorType = "user" | "api_key" | "system" | "service" | "webhook";

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
  },
  (t) => [
    primaryKey({ columns: [t.id, t.occurredAt] }),
    index("audit_logs_tenant_time_idx").on(t.tenantId, t.occurredAt, t.id),
    index("audit_logs_action_idx").on(t.action),
  ],
);

/**
 * Seals: each seal covers a contiguous id range of committed rows of one tenant (null = platform rows)
 * and chains to the previous seal of that tenant, so the write path stays a plain INSERT.
 */
export const auditSeals = auditSchema.table(
  "audit_seals",
  {
    id: bigint("id", { mode: "bigint" }).primaryKey().generatedAlwaysAsIdentity(),
    tenantId: uuid("tenant_id"),
    fromId: bigint("from_id", { mode: "bigint" }).notNull(),
    toId: bigint("to_id", { mode: "bigint" }).notNull(),
    rowCount: integer("row_count").notNull(),
    rowsHash: text("rows_hash").notNull(),
    prevSealHash: text("prev_seal_hash"),
    sealHash: text("seal_hash").notNull(),
    sealedAt: timestamp("sealed_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index("audit_seals_tenant_idx").on(t.tenantId, t.id)],
);
