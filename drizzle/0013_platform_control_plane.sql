-- The control plane moves out of the auth schema into the platform's own: where each tenant lives
-- (tenant_placements), the moves under way (tenant_moves) and the runtime's entry into a tenant
-- (enter_tenant). Rows are kept: the placements table changes schema in place, the moves are copied.
CREATE SCHEMA "platform";
--> statement-breakpoint
CREATE TABLE "platform"."tenant_moves" (
	"tenant_id" uuid PRIMARY KEY NOT NULL,
	"source" text NOT NULL,
	"target" text NOT NULL,
	"phase" text DEFAULT 'copying' NOT NULL CHECK ("phase" IN ('copying', 'switched', 'done')),
	"cursor" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"rows_copied" bigint DEFAULT 0 NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
INSERT INTO "platform"."tenant_moves" SELECT "tenant_id", "source", "target", "phase", "cursor", "rows_copied", "started_at", "updated_at" FROM "auth"."tenant_moves";
--> statement-breakpoint
DROP TABLE "auth"."tenant_moves";
--> statement-breakpoint
ALTER TABLE "auth"."tenant_placements" SET SCHEMA "platform";
--> statement-breakpoint
-- The keys to the tenants' table are the auth module's to declare (its descriptor's crossKeys).
ALTER TABLE "platform"."tenant_placements" RENAME CONSTRAINT "tenant_placements_tenant_id_organizations_id_fk" TO "tenant_placements_tenant_fk";
--> statement-breakpoint
ALTER TABLE "platform"."tenant_moves" ADD CONSTRAINT "tenant_moves_tenant_fk" FOREIGN KEY ("tenant_id") REFERENCES "auth"."organizations"("id") ON DELETE cascade;
--> statement-breakpoint
-- The runtime reads placements (entering a tenant, routing); only operators change them.
REVOKE ALL ON "platform"."tenant_placements", "platform"."tenant_moves" FROM sv_app;
--> statement-breakpoint
GRANT USAGE ON SCHEMA "platform" TO sv_app, sv_readonly;
--> statement-breakpoint
GRANT SELECT ON "platform"."tenant_placements" TO sv_app, sv_readonly;
--> statement-breakpoint
GRANT SELECT ON "platform"."tenant_moves" TO sv_readonly;
--> statement-breakpoint
CREATE FUNCTION "platform"."enter_tenant"(p_tenant text)
RETURNS TABLE ("database" text, "state" text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  placed_on text;
  placement_state text;
BEGIN
  PERFORM set_config('sv.tenant_id', coalesce(p_tenant, ''), true);
  IF p_tenant IS NULL OR p_tenant = '' OR p_tenant = '*' THEN
    RETURN;
  END IF;
  PERFORM pg_advisory_xact_lock_shared(1937142903, hashtext(p_tenant));
  SELECT p.database, p.state INTO placed_on, placement_state
    FROM platform.tenant_placements p
   WHERE p.tenant_id = CASE WHEN p_tenant ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$' THEN p_tenant::uuid END;
  IF placement_state = 'moving' AND placed_on = 'main' THEN
    PERFORM set_config('transaction_read_only', 'on', true);
  END IF;
  "database" := placed_on;
  "state" := placement_state;
  RETURN NEXT;
END;
$$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION "platform"."enter_tenant"(text) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION "platform"."enter_tenant"(text) TO sv_app;
--> statement-breakpoint
DROP FUNCTION "auth"."enter_tenant"(text);
