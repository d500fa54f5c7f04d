/** The `notes` schema: one tenant-scoped table. */
import { index, pgSchema, text, timestamp, uuid } from "drizzle-orm/pg-core";

export const notesSchema = pgSchema("notes");

export const notes = notesSchema.table(
  "notes",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: uuid("tenant_id").notNull(),
    body: text("body").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index("notes_tenant_idx").on(t.tenantId, t.createdAt)],
);
