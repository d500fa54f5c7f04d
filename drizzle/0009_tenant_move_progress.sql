-- Custom migration: progress of tenant moves (`sv-sdk tenant:move`), in the control-plane database,
-- so an interrupted move resumes where it stopped. One row per tenant with a move under way or done.
--   phase   copying  → rows are being copied (cursor: the last copied primary key per table)
--           switched → the placement points at the target; the source rows are being removed
--           done     → finished
-- Only operators move tenants: the runtime role gets no access (the default privileges would grant it).
CREATE TABLE "auth"."tenant_moves" (
	"tenant_id" uuid PRIMARY KEY NOT NULL REFERENCES "auth"."organizations"("id") ON DELETE CASCADE,
	"source" text NOT NULL,
	"target" text NOT NULL,
	"phase" text NOT NULL DEFAULT 'copying' CHECK ("phase" IN ('copying', 'switched', 'done')),
	"cursor" jsonb NOT NULL DEFAULT '{}'::jsonb,
	"rows_copied" bigint NOT NULL DEFAULT 0,
	"started_at" timestamp with time zone NOT NULL DEFAULT now(),
	"updated_at" timestamp with time zone NOT NULL DEFAULT now()
);
--> statement-breakpoint
REVOKE ALL ON "auth"."tenant_moves" FROM sv_app;
