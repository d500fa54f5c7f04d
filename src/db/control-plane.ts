/**
 * The control plane the platform owns: where each tenant lives and the moves under way. Kept in the
 * main database, in a schema of its own (`platform`): placements change when an operator moves a
 * tenant, never by deployment. The tenants themselves are a module's (the one whose descriptor
 * declares `tenants`); these rows point at them by id.
 */
import { bigint, integer, jsonb, pgSchema, text, timestamp, uuid } from "drizzle-orm/pg-core";

export const platformSchema = pgSchema("platform");

/**
 * Where a tenant's rows live. No row means the default placement (the databases the topology gives
 * each schema).
 */
export const tenantPlacements = platformSchema.table("tenant_placements", {
  tenantId: uuid("tenant_id").primaryKey(),
  database: text("database").notNull(),
  state: text("state", { enum: ["active", "moving"] })
    .notNull()
    .default("active"),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

/**
 * Progress of tenant moves, so an interrupted move resumes where it stopped: one row per tenant
 * with a move under way or done. Only operators move tenants: the runtime role has no access.
 */
export const tenantMoves = platformSchema.table("tenant_moves", {
  tenantId: uuid("tenant_id").primaryKey(),
  source: text("source").notNull(),
  target: text("target").notNull(),
  /** drizzle/0018: preparing → syncing (online) | copying (offline) → cutover → switched → done → finalized; or aborted. */
  phase: text("phase", {
    enum: ["preparing", "syncing", "copying", "cutover", "switched", "done", "finalized", "aborted"],
  })
    .notNull()
    .default("copying"),
  mode: text("mode", { enum: ["online", "offline"] })
    .notNull()
    .default("offline"),
  /** How long the tenant's writes were refused (the cutover), once switched. */
  cutoverMs: integer("cutover_ms"),
  finalizedAt: timestamp("finalized_at", { withTimezone: true }),
  cursor: jsonb("cursor").notNull().default({}),
  rowsCopied: bigint("rows_copied", { mode: "number" }).notNull().default(0),
  startedAt: timestamp("started_at", { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});
