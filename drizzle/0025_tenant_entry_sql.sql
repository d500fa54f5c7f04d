-- Entering a tenant, cheaper (drizzle/0023, 0024 did the same work in PL/pgSQL): the runtime checks that
-- the tenant id is a UUID and passes it as one (p_id, NULL when it is not), and the functions are SQL.
-- Measured on one server, 100k calls took 0.9-1.5 s as PL/pgSQL, of which about half was matching the
-- id against a case-insensitive pattern, and 0.42-0.47 s as these. A unit of work runs one, as its first
-- statement. Each statement of a VOLATILE function takes a fresh snapshot, as each one of the PL/pgSQL
-- bodies did: the placement is read after the tenant's write gate is held, so a move's flip that
-- committed while the unit waited for the gate is seen. The one-argument versions stay for instances of
-- the previous release during a rolling deploy. Names are qualified: no search_path needed.
CREATE FUNCTION "platform"."tenant_entry"(p_tenant text, p_id uuid)
RETURNS text[]
LANGUAGE sql VOLATILE
AS $$
  SELECT pg_catalog.set_config('sv.tenant_id', coalesce(p_tenant, ''), true),
         CASE WHEN p_id IS NOT NULL THEN pg_catalog.pg_advisory_xact_lock_shared(1937142903, pg_catalog.hashtext(p_tenant)) END;
  -- {database, state}; a third element only says the transaction was made read-only (a tenant moving out of main).
  SELECT ARRAY[p.database, p.state,
               CASE WHEN p.state OPERATOR(pg_catalog.=) 'moving' AND p.database OPERATOR(pg_catalog.=) 'main'
                    THEN pg_catalog.set_config('transaction_read_only', 'on', true) END]
    FROM platform.tenant_placements p
   WHERE p.tenant_id OPERATOR(pg_catalog.=) p_id;
$$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION "platform"."tenant_entry"(text, uuid) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION "platform"."tenant_entry"(text, uuid) TO sv_app;
--> statement-breakpoint
CREATE FUNCTION "platform"."enter_resident"(p_tenant text, p_id uuid)
RETURNS text[]
LANGUAGE sql VOLATILE
AS $$
  SELECT pg_catalog.set_config('sv.tenant_id', coalesce(p_tenant, ''), true),
         pg_catalog.pg_advisory_xact_lock_shared(1937142903, pg_catalog.hashtext(coalesce(p_tenant, '')));
  -- {state}; a second element only says the transaction was made read-only (the tenant is moving out).
  SELECT ARRAY[r.state,
               CASE WHEN r.state OPERATOR(pg_catalog.=) 'moving'
                    THEN pg_catalog.set_config('transaction_read_only', 'on', true) END]
    FROM platform.tenant_residents r
   WHERE r.tenant_id OPERATOR(pg_catalog.=) p_id;
$$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION "platform"."enter_resident"(text, uuid) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION "platform"."enter_resident"(text, uuid) TO sv_app;
