-- Custom migration: online tenant moves on PostgreSQL's logical replication (src/db/tenant-move-online.ts).
--
-- 1. Every row a tenant move replicates carries tenant_id, because a publication's row filter can only
--    name the row's own columns (no subqueries). The four tenant tables that had none (child rows found
--    through a foreign key) get one, filled by a trigger from the parent row on every insert or
--    re-parenting: role_permissions and role_inheritance from their role, email_events and dev_messages
--    from their send. The parents' tenant_id never changes, so the copy stays true. Rows of platform
--    parents (a built-in role's grants) keep NULL, like the parents.
-- 2. Platform rows have the same id in every database: a built-in role (tenant_id NULL, built_in, what
--    the seed writes) gets the id platform.platform_row_id('permissions.roles', name) on insert, and
--    existing ones are renumbered here (references follow). Replication copies ids verbatim: a tenant's
--    assignment of the built-in 'member' role then points at the target's own 'member' row, with nothing
--    to translate. Other global roles keep the id their writer chose (callers may choose one); a tenant
--    holding such a role is moved --offline, which translates ids by name.
-- 3. platform.tenant_moves records the mode and the online phases, the cutover's length and the
--    finalization; platform.tenant_move_retained keeps a switched-away tenant's source rows, out of the
--    live tables (where platform-wide work such as the email dispatcher would still find them), until
--    `tenant:move --finalize`.
CREATE FUNCTION platform.platform_row_id(p_table text, p_key text) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT md5('sv-sdk platform row ' || p_table || ' ' || p_key)::uuid $$;
--> statement-breakpoint
DO $$
DECLARE
  r record;
  new_id uuid;
BEGIN
  FOR r IN SELECT id, name FROM permissions.roles WHERE tenant_id IS NULL AND built_in LOOP
    new_id := platform.platform_row_id('permissions.roles', r.name);
    CONTINUE WHEN r.id = new_id;
    INSERT INTO permissions.roles
      SELECT * FROM jsonb_populate_record(null::permissions.roles,
        (SELECT to_jsonb(o) FROM permissions.roles o WHERE o.id = r.id)
          || jsonb_build_object('id', new_id, 'name', r.name || ' (renumbering)'));
    UPDATE permissions.role_permissions SET role_id = new_id WHERE role_id = r.id;
    UPDATE permissions.role_inheritance SET role_id = new_id WHERE role_id = r.id;
    UPDATE permissions.role_inheritance SET inherits_role_id = new_id WHERE inherits_role_id = r.id;
    UPDATE permissions.user_roles SET role_id = new_id WHERE role_id = r.id;
    DELETE FROM permissions.roles WHERE id = r.id;
    UPDATE permissions.roles SET name = r.name WHERE id = new_id;
  END LOOP;
END;
$$;
--> statement-breakpoint
CREATE FUNCTION platform.platform_role_id() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NEW.tenant_id IS NULL AND NEW.built_in THEN
    NEW.id := platform.platform_row_id('permissions.roles', NEW.name);
  END IF;
  RETURN NEW;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER roles_platform_id BEFORE INSERT ON permissions.roles
  FOR EACH ROW EXECUTE FUNCTION platform.platform_role_id();
--> statement-breakpoint
-- SECURITY DEFINER: the parent is looked up as the tables' owner, whatever row-level security shows the caller.
CREATE FUNCTION platform.tenant_of_role() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  NEW.tenant_id := (SELECT r.tenant_id FROM permissions.roles r WHERE r.id = NEW.role_id);
  RETURN NEW;
END;
$$;
--> statement-breakpoint
CREATE FUNCTION platform.tenant_of_send() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NEW.send_id IS NOT NULL THEN
    NEW.tenant_id := (SELECT s.tenant_id FROM email.email_sends s WHERE s.id = NEW.send_id);
  END IF;
  RETURN NEW;
END;
$$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION platform.tenant_of_role(), platform.tenant_of_send(), platform.platform_role_id() FROM PUBLIC;
--> statement-breakpoint
ALTER TABLE permissions.role_permissions ADD COLUMN tenant_id uuid;
--> statement-breakpoint
ALTER TABLE permissions.role_inheritance ADD COLUMN tenant_id uuid;
--> statement-breakpoint
ALTER TABLE email.email_events ADD COLUMN tenant_id uuid;
--> statement-breakpoint
ALTER TABLE email.dev_messages ADD COLUMN tenant_id uuid;
--> statement-breakpoint
UPDATE permissions.role_permissions c SET tenant_id = r.tenant_id FROM permissions.roles r WHERE r.id = c.role_id AND r.tenant_id IS NOT NULL;
--> statement-breakpoint
UPDATE permissions.role_inheritance c SET tenant_id = r.tenant_id FROM permissions.roles r WHERE r.id = c.role_id AND r.tenant_id IS NOT NULL;
--> statement-breakpoint
UPDATE email.email_events c SET tenant_id = s.tenant_id FROM email.email_sends s WHERE s.id = c.send_id AND s.tenant_id IS NOT NULL;
--> statement-breakpoint
UPDATE email.dev_messages c SET tenant_id = s.tenant_id FROM email.email_sends s WHERE s.id = c.send_id AND s.tenant_id IS NOT NULL;
--> statement-breakpoint
CREATE TRIGGER role_permissions_tenant BEFORE INSERT OR UPDATE OF role_id ON permissions.role_permissions
  FOR EACH ROW EXECUTE FUNCTION platform.tenant_of_role();
--> statement-breakpoint
CREATE TRIGGER role_inheritance_tenant BEFORE INSERT OR UPDATE OF role_id ON permissions.role_inheritance
  FOR EACH ROW EXECUTE FUNCTION platform.tenant_of_role();
--> statement-breakpoint
CREATE TRIGGER email_events_tenant BEFORE INSERT OR UPDATE OF send_id ON email.email_events
  FOR EACH ROW EXECUTE FUNCTION platform.tenant_of_send();
--> statement-breakpoint
CREATE TRIGGER dev_messages_tenant BEFORE INSERT OR UPDATE OF send_id ON email.dev_messages
  FOR EACH ROW EXECUTE FUNCTION platform.tenant_of_send();
--> statement-breakpoint
CREATE INDEX role_permissions_tenant_idx ON permissions.role_permissions (tenant_id);
--> statement-breakpoint
CREATE INDEX role_inheritance_tenant_idx ON permissions.role_inheritance (tenant_id);
--> statement-breakpoint
CREATE INDEX email_events_tenant_idx ON email.email_events (tenant_id);
--> statement-breakpoint
CREATE INDEX dev_messages_tenant_idx ON email.dev_messages (tenant_id);
--> statement-breakpoint
ALTER TABLE platform.tenant_moves DROP CONSTRAINT tenant_moves_phase_check;
--> statement-breakpoint
-- phase: preparing → syncing (online) | copying (offline) → cutover → switched → done → finalized; or aborted.
ALTER TABLE platform.tenant_moves ADD CONSTRAINT tenant_moves_phase_check
  CHECK (phase IN ('preparing', 'syncing', 'copying', 'cutover', 'switched', 'done', 'finalized', 'aborted'));
--> statement-breakpoint
ALTER TABLE platform.tenant_moves ADD COLUMN mode text DEFAULT 'offline' NOT NULL CHECK (mode IN ('online', 'offline'));
--> statement-breakpoint
ALTER TABLE platform.tenant_moves ADD COLUMN cutover_ms integer;
--> statement-breakpoint
ALTER TABLE platform.tenant_moves ADD COLUMN finalized_at timestamp with time zone;
--> statement-breakpoint
-- Moves before this migration deleted their source rows at once: nothing of theirs is left to finalize.
UPDATE platform.tenant_moves SET phase = 'finalized', finalized_at = updated_at WHERE phase = 'done';
--> statement-breakpoint
CREATE TABLE platform.tenant_move_retained (
	"tenant_id" uuid NOT NULL,
	"table_name" text NOT NULL,
	"row" jsonb NOT NULL,
	"retained_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX tenant_move_retained_tenant_idx ON platform.tenant_move_retained (tenant_id, table_name);
--> statement-breakpoint
REVOKE ALL ON platform.tenant_move_retained FROM sv_app, sv_readonly;
