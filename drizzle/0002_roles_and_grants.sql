-- Custom migration: database roles, their grants, and the append-only guard on audit tables.
--   sv_app         runtime: DML on auth/email/permissions, SELECT+INSERT only on audit, no DDL, not owner
--   sv_readonly    SELECT everywhere (reporting, support)
--   sv_auditor     SELECT on audit only
--   sv_maintenance retention and repair jobs (granted nothing here; the audit module grants what it needs)
-- Roles are cluster-wide: created only when missing, so every database of a cluster can run this.
DO $$
DECLARE
  role_name text;
BEGIN
  FOREACH role_name IN ARRAY ARRAY['sv_app', 'sv_readonly', 'sv_auditor', 'sv_maintenance'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL; -- another database of the cluster created it concurrently
      END;
    END IF;
  END LOOP;
END $$;
--> statement-breakpoint
-- The migrating owner may act as sv_app (the runtime pool assumes the role at connection start when
-- no dedicated sv_app login is configured). Superusers need no grant.
DO $$
BEGIN
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE format('GRANT sv_app TO %I', current_user);
  END IF;
END $$;
--> statement-breakpoint
GRANT USAGE ON SCHEMA auth, email, audit, permissions TO sv_app, sv_readonly;
--> statement-breakpoint
GRANT USAGE ON SCHEMA audit TO sv_auditor;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA auth, email, permissions TO sv_app;
--> statement-breakpoint
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA audit TO sv_app;
--> statement-breakpoint
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA auth, email, audit, permissions TO sv_app;
--> statement-breakpoint
GRANT SELECT ON ALL TABLES IN SCHEMA auth, email, audit, permissions TO sv_readonly;
--> statement-breakpoint
GRANT SELECT ON ALL TABLES IN SCHEMA audit TO sv_auditor;
--> statement-breakpoint
-- Tables created by later migrations (run by the same owner) get the same grants.
ALTER DEFAULT PRIVILEGES IN SCHEMA auth, email, permissions GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO sv_app;
--> statement-breakpoint
ALTER DEFAULT PRIVILEGES IN SCHEMA audit GRANT SELECT, INSERT ON TABLES TO sv_app;
--> statement-breakpoint
ALTER DEFAULT PRIVILEGES IN SCHEMA auth, email, audit, permissions GRANT USAGE, SELECT ON SEQUENCES TO sv_app;
--> statement-breakpoint
ALTER DEFAULT PRIVILEGES IN SCHEMA auth, email, audit, permissions GRANT SELECT ON TABLES TO sv_readonly;
--> statement-breakpoint
ALTER DEFAULT PRIVILEGES IN SCHEMA audit GRANT SELECT ON TABLES TO sv_auditor;
--> statement-breakpoint
-- /ready compares applied migrations with shipped ones, as the runtime role.
GRANT USAGE ON SCHEMA drizzle TO sv_app, sv_readonly;
--> statement-breakpoint
GRANT SELECT ON drizzle.__drizzle_migrations TO sv_app, sv_readonly;
--> statement-breakpoint
-- Partitions are reached through the parent, whose row-level security the runtime role must not skip.
REVOKE ALL ON audit.audit_logs_default FROM sv_app;
--> statement-breakpoint
CREATE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit.% is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
--> statement-breakpoint
CREATE TRIGGER audit_logs_append_only BEFORE UPDATE OR DELETE ON audit.audit_logs
  FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
--> statement-breakpoint
CREATE TRIGGER audit_logs_no_truncate BEFORE TRUNCATE ON audit.audit_logs
  FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();
--> statement-breakpoint
CREATE TRIGGER audit_seals_append_only BEFORE UPDATE OR DELETE ON audit.audit_seals
  FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
--> statement-breakpoint
CREATE TRIGGER audit_seals_no_truncate BEFORE TRUNCATE ON audit.audit_seals
  FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();
