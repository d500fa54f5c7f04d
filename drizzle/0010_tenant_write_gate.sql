-- Custom migration: the runtime's entry into a tenant, in the control-plane database.
-- Every unit of work that acts for a tenant calls auth.enter_tenant(tenant) first, in one round trip:
--   1. it sets sv.tenant_id for row-level security (what the router did with set_config before);
--   2. it takes a shared transaction-level advisory lock on the tenant (class 'svtw'), so a tenant
--      move can wait for every unit of work already writing to the tenant (it takes the lock
--      exclusively for a moment after marking the tenant 'moving');
--   3. then — in a statement of its own, so with a snapshot taken after the lock was granted — it
--      reads where the tenant lives and whether it is moving. A moving tenant's unit of work is made
--      read-only here when the tenant's rows are in this database (the router does the same in the
--      tenant's own database otherwise), so writes are refused (SQLSTATE 25006) until the move ends.
CREATE FUNCTION "auth"."enter_tenant"(p_tenant text)
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
    FROM auth.tenant_placements p
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
GRANT EXECUTE ON FUNCTION "auth"."enter_tenant"(text) TO sv_app;
