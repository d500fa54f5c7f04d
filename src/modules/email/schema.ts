/**
 * The `email` schema: templates (defaults with `tenant_id` null, per-tenant overrides), the
 * transactional outbox `email_sends`, provider webhook events, per-user category preferences, the
 * suppression list, and the messages the development transport records instead of sending.
 */
import { sql } from "drizzle-orm";
import {
  boolean,
  index,
  integer,
  jsonb,
  pgSchema,
  primaryKey,
  text,
  timestamp,
  unique,
  uuid,
} from "drizzle-orm/pg-core";

export const emailSchema = pgSchema("email");

export const emailTemplates = emailSchema.table(
  "email_templates",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: uuid("tenant_id"),
    key: text("key").notNull(),
    locale: text("locale").notNull().default("en"),
    subject: text("subject").notNull(),
    html: text("html").notNull(),
    text: text("text").notNull(),
    version: integer("version").notNull().default(1),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [unique("email_templates_tenant_key_locale_key").on(t.tenantId, t.key, t.locale).nullsNotDistinct()],
);

export type EmailSendStatus =
  | "queued"
  | "sending"
  | "sent"
  | "delivered"
  | "delayed"
  | "bounced"
  | "complained"
  | "opened"
  | "clicked"
  | "failed"
  | "dead"
  | "skipped";

export const emailSends = emailSchema.table(
  "email_sends",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: uuid("tenant_id"),
    userId: uuid("user_id"),
    toAddress: text("to_address").notNull(),
    fromAddress: text("from_address"),
    templateKey: text("template_key").notNull(),
    locale: text("locale").notNull().default("en"),
    category: text("category").notNull(),
    subject: text("subject").notNull(),
    html: text("html").notNull(),
    text: text("text").notNull(),
    headers: jsonb("headers").$type<Record<string, string>>(),
    status: text("status").$type<EmailSendStatus>().notNull().default("queued"),
    skipReason: text("skip_reason"),
    idempotencyKey: text("idempotency_key").unique(),
    attempts: integer("attempts").notNull().default(0),
    maxAttempts: integer("max_attempts").notNull().default(8),
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true }).notNull().defaultNow(),
    leaseUntil: timestamp("lease_until", { withTimezone: true }),
    claimedBy: text("claimed_by"),
    // The Idempotency-Key of the batch request this row was first claimed into (sha256 of the batch's
    // sorted ids): a retried batch re-sends the same rows under the same key, so the provider answers
    // a batch it already accepted from its idempotency cache instead of sending it again.
    batchKey: text("batch_key"),
    providerMessageId: text("provider_message_id"),
    lastError: text("last_error"),
    sentAt: timestamp("sent_at", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    // The dispatcher's claim: due rows only, in its order (next_attempt_at, batch_key nulls last), so
    // a claim reads its batch off the front of the index. Ordered by next_attempt_at alone, a backlog
    // enqueued in one transaction (one now(), one next_attempt_at) was read and sorted whole by every
    // claim (drizzle/0012). Ties stay in heap order, the index's own tiebreaker.
    index("email_sends_claim_idx").on(t.nextAttemptAt, t.batchKey).where(sql`status in ('queued', 'sending')`),
    index("email_sends_provider_message_idx").on(t.providerMessageId),
    index("email_sends_user_idx").on(t.userId),
  ],
);

export const emailEvents = emailSchema.table("email_events", {
  id: uuid("id").primaryKey().defaultRandom(),
  // The webhook's own id (svix-id): a replayed delivery is recognised and ignored.
  providerEventId: text("provider_event_id").notNull().unique(),
  sendId: uuid("send_id").references(() => emailSends.id, { onDelete: "set null" }),
  type: text("type").notNull(),
  payload: jsonb("payload").notNull(),
  receivedAt: timestamp("received_at", { withTimezone: true }).notNull().defaultNow(),
});

export const emailPreferences = emailSchema.table(
  "email_preferences",
  {
    userId: uuid("user_id").notNull(),
    category: text("category").notNull(),
    optedOut: boolean("opted_out").notNull().default(false),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.category] })],
);

export const suppressions = emailSchema.table("suppressions", {
  // Stored lower-cased; one row per address.
  email: text("email").primaryKey(),
  reason: text("reason", { enum: ["hard_bounce", "complaint", "manual"] }).notNull(),
  sourceEventId: text("source_event_id"),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});

export const devMessages = emailSchema.table(
  "dev_messages",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    sendId: uuid("send_id").references(() => emailSends.id, { onDelete: "cascade" }),
    toAddress: text("to_address").notNull(),
    fromAddress: text("from_address").notNull(),
    subject: text("subject").notNull(),
    html: text("html").notNull(),
    text: text("text").notNull(),
    headers: jsonb("headers").$type<Record<string, string>>(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index("dev_messages_created_idx").on(t.createdAt)],
);
