-- Custom migration: the cross-database outbox (issue 16, "an honest split"). In every database.
--
-- A unit of work commits in one database only. What it must also change in another database (an
-- audit event when `audit` lives on a database of its own, work on a tenant placed elsewhere, the
-- copies of a deleted user) is written here, in the same transaction as the change it follows, and
-- a relay applies it to the target database after the commit (src/db/outbox-relay.ts).
--
-- Exactly once: each effect has a key; the target records the keys it applied (outbox_applied) in
-- the same transaction as the effect, so an effect applied but not yet removed from the source (the
-- relay died between the two commits) is recognised and skipped when it is claimed again.
CREATE TABLE "platform"."outbox" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
	"key" uuid DEFAULT gen_random_uuid() NOT NULL UNIQUE,
	"target" text NOT NULL,
	"effect" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	-- A relay's claim: the row is its until then (a relay that died leaves it to the next one).
	"claimed_until" timestamp with time zone,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text
);
--> statement-breakpoint
CREATE INDEX "outbox_claim_idx" ON "platform"."outbox" ("id");
--> statement-breakpoint
CREATE TABLE "platform"."outbox_applied" (
	"key" uuid PRIMARY KEY NOT NULL,
	"applied_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "outbox_applied_time_idx" ON "platform"."outbox_applied" ("applied_at");
--> statement-breakpoint
-- Wakes the relays at commit (a notification is delivered only if the transaction commits).
CREATE FUNCTION "platform"."outbox_notify"() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
  PERFORM pg_notify('sv_outbox', '');
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "outbox_notify" AFTER INSERT ON "platform"."outbox" FOR EACH STATEMENT EXECUTE FUNCTION "platform"."outbox_notify"();
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON "platform"."outbox" TO sv_app;
--> statement-breakpoint
GRANT SELECT, INSERT, DELETE ON "platform"."outbox_applied" TO sv_app;
--> statement-breakpoint
GRANT SELECT ON "platform"."outbox", "platform"."outbox_applied" TO sv_readonly;
