CREATE TABLE "platform"."tenant_residents" (
	"tenant_id" uuid PRIMARY KEY NOT NULL,
	"state" text DEFAULT 'active' NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
-- Which tenants this database holds, when it is not main (main's are its placements): read by the
-- runtime entering a tenant here, written by operators (tenant:move) and, for a tenant just created
-- here, by place_resident.
REVOKE ALL ON "platform"."tenant_residents" FROM sv_app;
--> statement-breakpoint
GRANT SELECT ON "platform"."tenant_residents" TO sv_app, sv_readonly;
--> statement-breakpoint
ALTER TABLE "platform"."tenant_residents" ADD CONSTRAINT "tenant_residents_state_check" CHECK ("state" IN ('active', 'moving'));
--> statement-breakpoint
-- Entering a tenant on the database that holds its rows, when that is not main: the same work as
-- platform.tenant_entry on main (drizzle/0023) — sv.tenant_id, the write gate held shared (a move waits
-- for it here, on its source), read-only while the tenant is being moved out — and the answer says
-- whether the tenant lives here at all: its state, or NULL (a router whose memory of the placement has
-- gone stale commits nothing here and asks main).
CREATE FUNCTION "platform"."enter_resident"(p_tenant text)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  resident_state text;
BEGIN
  PERFORM set_config('sv.tenant_id', coalesce(p_tenant, ''), true),
          pg_advisory_xact_lock_shared(1937142903, hashtext(coalesce(p_tenant, '')));
  SELECT r.state INTO resident_state
    FROM platform.tenant_residents r
   WHERE r.tenant_id = CASE WHEN p_tenant ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$' THEN p_tenant::uuid END;
  IF resident_state = 'moving' THEN
    PERFORM set_config('transaction_read_only', 'on', true);
  END IF;
  RETURN resident_state;
END;
$$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION "platform"."enter_resident"(text) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION "platform"."enter_resident"(text) TO sv_app;
--> statement-breakpoint
-- The runtime records a tenant it has just created on this database (its organization's copy is here,
-- no member and no resident row yet), and only that, as place_new_tenant does on main (drizzle/0019).
CREATE FUNCTION "platform"."place_resident"(p_tenant uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM auth.organizations o WHERE o.id = p_tenant) THEN
    RAISE EXCEPTION 'no tenant % here: a tenant is made resident once its row is copied', p_tenant USING ERRCODE = '23503';
  END IF;
  IF EXISTS (SELECT 1 FROM auth.members m WHERE m.organization_id = p_tenant)
     OR EXISTS (SELECT 1 FROM platform.tenant_residents r WHERE r.tenant_id = p_tenant) THEN
    RAISE EXCEPTION 'tenant % is in use: only a new tenant is made resident here (move one with tenant:move)', p_tenant
      USING ERRCODE = '42501';
  END IF;
  INSERT INTO platform.tenant_residents (tenant_id) VALUES (p_tenant);
END;
$$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION "platform"."place_resident"(uuid) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION "platform"."place_resident"(uuid) TO sv_app;
