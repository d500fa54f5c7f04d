CREATE SCHEMA "notes";
--> statement-breakpoint
CREATE TABLE "notes"."notes" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"body" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "notes_tenant_idx" ON "notes"."notes" USING btree ("tenant_id","created_at");
--> statement-breakpoint
-- Custom: the tenant wall, as sv-sdk's own tenant tables have it.
ALTER TABLE "notes"."notes" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY notes_tenant_isolation ON "notes"."notes" USING (tenant_id::text = current_setting('sv.tenant_id', true) OR current_setting('sv.tenant_id', true) = '*');
