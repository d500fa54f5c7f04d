-- Custom migration: one line that opens a schema of your own to the runtime role (issue 17).
--
-- Your tables live in schemas of your own (`billing`, say), created by your migrations as the owner.
-- The API and the SDK run as sv_app (or a login in it), which gets nothing by default: this grants it
-- what it needs on every table and sequence of the schema, now and for the ones your later migrations
-- create (default privileges of the role that runs the migrations, the owner). `sv-sdk migrate
-- --schema billing` and `createSdk({ migrations: { schemas: ["billing"] } })` call it after applying
-- your migrations; a migration of yours may call it too: `select platform.grant_to_runtime('billing');`
--
-- sv-sdk's own schemas are refused: their grants are per column, with row-level security, and
-- granting every table whole would undo that.
CREATE FUNCTION "platform"."grant_to_runtime"(target_schema text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
  IF target_schema IN ('auth', 'email', 'audit', 'permissions', 'platform', 'drizzle', 'public', 'pg_catalog', 'information_schema')
     OR target_schema LIKE 'pg\_%' THEN
    RAISE EXCEPTION 'platform.grant_to_runtime: % is not a schema of yours', target_schema USING ERRCODE = '22023';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = target_schema) THEN
    RAISE EXCEPTION 'platform.grant_to_runtime: schema % does not exist', target_schema USING ERRCODE = '3F000';
  END IF;
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO sv_app', target_schema);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO sv_app', target_schema);
  EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO sv_app', target_schema);
  EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO sv_app', target_schema);
  EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO sv_app', target_schema);
END
$$;--> statement-breakpoint
REVOKE ALL ON FUNCTION "platform"."grant_to_runtime"(text) FROM PUBLIC;
