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

/**
 * The tenants a database other than main holds, kept in that database (main's own are its
 * placements). A unit of work in such a tenant enters it here, where its rows are — the write gate,
 * the setting, whether it is being moved — and does not open main at all unless it uses it. A move
 * marks the row 'moving' on its source for the cutover, writes it on its target before the switch
 * and removes it from the source at the switch (src/db/tenant-move.ts); a tenant created on a
 * database of its own gets its row with its first rows (src/db/tenant-placement.ts).
 */
export const tenantResidents = platformSchema.table("tenant_residents", {
  tenantId: uuid("tenant_id").primaryKey(),
  state: text("state", { enum: ["active", "moving"] })
    .notNull()
    .default("active"),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});
