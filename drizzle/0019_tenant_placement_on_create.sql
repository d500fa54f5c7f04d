-- Custom migration: a new tenant is placed before its first row is written (topology
-- `tenants.defaultDatabase`, POST /api/v1/tenants with a placement). The runtime role may record the
-- placement of a tenant that was just created — its organization row exists, it has no member and no
-- placement yet — and only that, through place_new_tenant; changing an existing tenant's placement
-- stays an operator's work (tenant:move).
CREATE FUNCTION "platform"."place_new_tenant"(p_tenant uuid, p_database text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF p_database IS NULL OR p_database !~ '^[a-z][a-z0-9_]*$' THEN
    RAISE EXCEPTION 'not a database name: %', p_database USING ERRCODE = '22023';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM auth.organizations o WHERE o.id = p_tenant) THEN
    RAISE EXCEPTION 'no tenant %: a tenant is placed once its row exists', p_tenant USING ERRCODE = '23503';
  END IF;
  IF EXISTS (SELECT 1 FROM auth.members m WHERE m.organization_id = p_tenant)
     OR EXISTS (SELECT 1 FROM platform.tenant_placements p WHERE p.tenant_id = p_tenant) THEN
    RAISE EXCEPTION 'tenant % is in use: only a new tenant is placed here (move one with tenant:move)', p_tenant
      USING ERRCODE = '42501';
  END IF;
  INSERT INTO platform.tenant_placements (tenant_id, database) VALUES (p_tenant, p_database);
  -- Routers holding the placements in memory reload them once this commits.
  PERFORM pg_notify('sv_placements', p_tenant::text);
END;
$$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION "platform"."place_new_tenant"(uuid, text) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION "platform"."place_new_tenant"(uuid, text) TO sv_app;
