-- Custom migration: effective permissions, kept in permissions.permission_cache by the database itself.
--
-- Semantics (Casbin "RBAC with domains" with a global domain):
--   * an assignment with tenant_id NULL is global and applies in every tenant and in the global scope;
--   * an assignment with a tenant applies in that tenant only (a tenant owner's `*` grants nothing
--     elsewhere);
--   * a role grants its own permissions and those of every role it inherits from, transitively.
--
-- Consistency: statement-level triggers on user_roles, role_permissions and role_inheritance recompute
-- the affected permission_cache rows in the same transaction as the change and NOTIFY `sv_permissions`
-- (delivered on commit) so every SDK instance drops its in-process copy. Missing rows are filled on the
-- first check by permissions.cached_permissions(), in the one query the check costs.
--
-- Fill/change races are closed with transaction-scoped advisory locks (class 1936683632 = 'sv_p'):
--   key 0            role-level changes take it exclusively; fills and assignment changes share it;
--   key hash(user)   assignment changes of a user take it exclusively; fills for that user share it.
-- A fill therefore never computes before, and stores after, a change it does not see.
CREATE FUNCTION permissions.effective_permissions(p_user uuid, p_tenant uuid) RETURNS text[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  WITH RECURSIVE held(role_id) AS (
    SELECT ur.role_id FROM permissions.user_roles ur
     WHERE ur.user_id = p_user AND (ur.tenant_id IS NULL OR ur.tenant_id = p_tenant)
    UNION -- not UNION ALL: terminates even if an inheritance cycle slipped in
    SELECT ri.inherits_role_id FROM permissions.role_inheritance ri JOIN held h ON ri.role_id = h.role_id
  )
  SELECT coalesce(array_agg(DISTINCT rp.permission ORDER BY rp.permission), '{}'::text[])
    FROM held h JOIN permissions.role_permissions rp ON rp.role_id = h.role_id
$$;
--> statement-breakpoint
-- The one query of an uncached check: the cached row, or a fill. Security definer because a check is
-- an authorization decision about a user, not a read of tenant data: it must see the user's global and
-- tenant rows whatever `sv.tenant_id` the caller's transaction carries.
CREATE FUNCTION permissions.cached_permissions(p_user uuid, p_tenant uuid) RETURNS text[]
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result text[];
BEGIN
  SELECT c.permissions INTO result FROM permissions.permission_cache c
   WHERE c.user_id = p_user AND (c.tenant_id = p_tenant OR (p_tenant IS NULL AND c.tenant_id IS NULL));
  IF FOUND THEN
    RETURN result;
  END IF;
  PERFORM pg_advisory_xact_lock_shared(1936683632, 0);
  PERFORM pg_advisory_xact_lock_shared(1936683632, hashtext(p_user::text));
  result := permissions.effective_permissions(p_user, p_tenant);
  -- Only a READ COMMITTED statement sees changes committed while it waited for the locks; a fill from
  -- an older snapshot is answered but not stored. Users without any permission are not stored either
  -- (nothing to go stale, and no row for ids that are not users).
  IF cardinality(result) > 0
     AND current_setting('transaction_isolation') = 'read committed'
     AND (p_tenant IS NULL OR EXISTS (SELECT 1 FROM auth.organizations o WHERE o.id = p_tenant)) THEN
    INSERT INTO permissions.permission_cache AS c (user_id, tenant_id, permissions)
    VALUES (p_user, p_tenant, result)
    ON CONFLICT ON CONSTRAINT permission_cache_user_tenant_key
    DO UPDATE SET permissions = excluded.permissions, computed_at = now();
  END IF;
  RETURN result;
END $$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION permissions.effective_permissions(uuid, uuid) FROM PUBLIC;
--> statement-breakpoint
REVOKE ALL ON FUNCTION permissions.cached_permissions(uuid, uuid) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION permissions.effective_permissions(uuid, uuid) TO sv_app;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION permissions.cached_permissions(uuid, uuid) TO sv_app;
--> statement-breakpoint
-- A role's grants or parents changed: every cached row of every holder of the role, or of a role that
-- inherits from it, is recomputed.
CREATE FUNCTION permissions.refresh_for_roles(p_roles uuid[]) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF cardinality(p_roles) = 0 THEN
    RETURN;
  END IF;
  PERFORM pg_advisory_xact_lock(1936683632, 0);
  UPDATE permissions.permission_cache c
     SET permissions = permissions.effective_permissions(c.user_id, c.tenant_id), computed_at = now()
   WHERE EXISTS (
     WITH RECURSIVE affected(role_id) AS (
       SELECT unnest(p_roles)
       UNION
       SELECT ri.role_id FROM permissions.role_inheritance ri JOIN affected a ON ri.inherits_role_id = a.role_id
     )
     SELECT 1 FROM permissions.user_roles ur JOIN affected a ON a.role_id = ur.role_id
      WHERE ur.user_id = c.user_id AND (ur.tenant_id IS NULL OR ur.tenant_id = c.tenant_id));
  PERFORM pg_notify('sv_permissions', '*');
END $$;
--> statement-breakpoint
-- A user's assignments changed: that user's rows are recomputed (every tenant for a global one).
CREATE FUNCTION permissions.refresh_for_users(p_users uuid[], p_tenants uuid[]) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  distinct_users uuid[];
BEGIN
  IF cardinality(p_users) = 0 THEN
    RETURN;
  END IF;
  SELECT array_agg(DISTINCT u ORDER BY u) INTO distinct_users FROM unnest(p_users) AS u;
  PERFORM pg_advisory_xact_lock_shared(1936683632, 0);
  -- Sorted, so two assignment changes lock their users in the same order and cannot deadlock.
  PERFORM pg_advisory_xact_lock(1936683632, h)
     FROM (SELECT DISTINCT hashtext(u::text) AS h FROM unnest(distinct_users) AS u ORDER BY 1) AS keys;
  UPDATE permissions.permission_cache c
     SET permissions = permissions.effective_permissions(c.user_id, c.tenant_id), computed_at = now()
   WHERE EXISTS (
     SELECT 1 FROM unnest(p_users, p_tenants) AS ch(user_id, tenant_id)
      WHERE ch.user_id = c.user_id AND (ch.tenant_id IS NULL OR ch.tenant_id = c.tenant_id));
  IF cardinality(distinct_users) > 50 THEN
    PERFORM pg_notify('sv_permissions', '*');
  ELSE
    PERFORM pg_notify('sv_permissions', 'user:' || u::text) FROM unnest(distinct_users) AS u;
  END IF;
END $$;
--> statement-breakpoint
CREATE FUNCTION permissions.on_user_roles_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM permissions.refresh_for_users(
    coalesce((SELECT array_agg(user_id) FROM changed), '{}'),
    coalesce((SELECT array_agg(tenant_id) FROM changed), '{}'));
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE FUNCTION permissions.on_role_grants_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM permissions.refresh_for_roles(coalesce((SELECT array_agg(DISTINCT role_id) FROM changed), '{}'));
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER user_roles_refresh_insert AFTER INSERT ON permissions.user_roles
  REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION permissions.on_user_roles_change();
--> statement-breakpoint
CREATE TRIGGER user_roles_refresh_delete AFTER DELETE ON permissions.user_roles
  REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION permissions.on_user_roles_change();
--> statement-breakpoint
CREATE TRIGGER user_roles_refresh_update_old AFTER UPDATE ON permissions.user_roles
  REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION permissions.on_user_roles_change();
--> statement-breakpoint
CREATE TRIGGER user_roles_refresh_update_new AFTER UPDATE ON permissions.user_roles
  REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION permissions.on_user_roles_change();
--> statement-breakpoint
CREATE TRIGGER role_permissions_refresh_insert AFTER INSERT ON permissions.role_permissions
  REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION permissions.on_role_grants_change();
--> statement-breakpoint
CREATE TRIGGER role_permissions_refresh_delete AFTER DELETE ON permissions.role_permissions
  REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION permissions.on_role_grants_change();
--> statement-breakpoint
CREATE TRIGGER role_permissions_refresh_update_old AFTER UPDATE ON permissions.role_permissions
  REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION permissions.on_role_grants_change();
--> statement-breakpoint
CREATE TRIGGER role_permissions_refresh_update_new AFTER UPDATE ON permissions.role_permissions
  REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION permissions.on_role_grants_change();
--> statement-breakpoint
CREATE TRIGGER role_inheritance_refresh_insert AFTER INSERT ON permissions.role_inheritance
  REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION permissions.on_role_grants_change();
--> statement-breakpoint
CREATE TRIGGER role_inheritance_refresh_delete AFTER DELETE ON permissions.role_inheritance
  REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION permissions.on_role_grants_change();
--> statement-breakpoint
CREATE TRIGGER role_inheritance_refresh_update_old AFTER UPDATE ON permissions.role_inheritance
  REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION permissions.on_role_grants_change();
--> statement-breakpoint
CREATE TRIGGER role_inheritance_refresh_update_new AFTER UPDATE ON permissions.role_inheritance
  REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION permissions.on_role_grants_change();
--> statement-breakpoint
-- Second wall behind the service: a role never inherits across tenants, and a tenant's role is only
-- ever assigned in that tenant (so `*` of a tenant owner cannot leak into another tenant or globally).
CREATE FUNCTION permissions.check_scope() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  role_tenant uuid;
  parent_tenant uuid;
BEGIN
  IF TG_TABLE_NAME = 'user_roles' THEN
    SELECT r.tenant_id INTO role_tenant FROM permissions.roles r WHERE r.id = NEW.role_id;
    IF role_tenant IS NOT NULL AND role_tenant IS DISTINCT FROM NEW.tenant_id THEN
      RAISE EXCEPTION 'role % belongs to tenant % and cannot be assigned in scope %', NEW.role_id, role_tenant, coalesce(NEW.tenant_id::text, 'global')
        USING ERRCODE = 'check_violation';
    END IF;
  ELSE
    SELECT r.tenant_id INTO role_tenant FROM permissions.roles r WHERE r.id = NEW.role_id;
    SELECT r.tenant_id INTO parent_tenant FROM permissions.roles r WHERE r.id = NEW.inherits_role_id;
    IF parent_tenant IS NOT NULL AND parent_tenant IS DISTINCT FROM role_tenant THEN
      RAISE EXCEPTION 'role % cannot inherit from role % of another scope', NEW.role_id, NEW.inherits_role_id
        USING ERRCODE = 'check_violation';
    END IF;
  END IF;
  RETURN NEW;
END $$;
--> statement-breakpoint
CREATE TRIGGER user_roles_check_scope BEFORE INSERT OR UPDATE ON permissions.user_roles
  FOR EACH ROW EXECUTE FUNCTION permissions.check_scope();
--> statement-breakpoint
CREATE TRIGGER role_inheritance_check_scope BEFORE INSERT OR UPDATE ON permissions.role_inheritance
  FOR EACH ROW EXECUTE FUNCTION permissions.check_scope();
--> statement-breakpoint
-- Row-level security for writes (restrictive, on top of 0003's visibility policies): inside a tenant
-- only that tenant's rows can be written; global rows only with no tenant set; '*' writes anywhere.
-- A tenant admin's transaction can therefore never touch a global role or another tenant's rows.
CREATE FUNCTION permissions.writable_scope(p_tenant uuid) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(current_setting('sv.tenant_id', true), '') = '*'
      OR (p_tenant IS NULL AND coalesce(current_setting('sv.tenant_id', true), '') = '')
      OR p_tenant::text = current_setting('sv.tenant_id', true)
$$;
--> statement-breakpoint
CREATE POLICY roles_write_insert ON permissions.roles AS RESTRICTIVE FOR INSERT WITH CHECK (permissions.writable_scope(tenant_id));
--> statement-breakpoint
CREATE POLICY roles_write_update ON permissions.roles AS RESTRICTIVE FOR UPDATE USING (permissions.writable_scope(tenant_id)) WITH CHECK (permissions.writable_scope(tenant_id));
--> statement-breakpoint
CREATE POLICY roles_write_delete ON permissions.roles AS RESTRICTIVE FOR DELETE USING (permissions.writable_scope(tenant_id));
--> statement-breakpoint
CREATE POLICY user_roles_write_insert ON permissions.user_roles AS RESTRICTIVE FOR INSERT WITH CHECK (permissions.writable_scope(tenant_id));
--> statement-breakpoint
CREATE POLICY user_roles_write_update ON permissions.user_roles AS RESTRICTIVE FOR UPDATE USING (permissions.writable_scope(tenant_id)) WITH CHECK (permissions.writable_scope(tenant_id));
--> statement-breakpoint
CREATE POLICY user_roles_write_delete ON permissions.user_roles AS RESTRICTIVE FOR DELETE USING (permissions.writable_scope(tenant_id));
--> statement-breakpoint
CREATE POLICY role_permissions_write_insert ON permissions.role_permissions AS RESTRICTIVE FOR INSERT WITH CHECK (EXISTS (SELECT 1 FROM permissions.roles r WHERE r.id = role_id AND permissions.writable_scope(r.tenant_id)));
--> statement-breakpoint
CREATE POLICY role_permissions_write_update ON permissions.role_permissions AS RESTRICTIVE FOR UPDATE USING (EXISTS (SELECT 1 FROM permissions.roles r WHERE r.id = role_id AND permissions.writable_scope(r.tenant_id))) WITH CHECK (EXISTS (SELECT 1 FROM permissions.roles r WHERE r.id = role_id AND permissions.writable_scope(r.tenant_id)));
--> statement-breakpoint
CREATE POLICY role_permissions_write_delete ON permissions.role_permissions AS RESTRICTIVE FOR DELETE USING (EXISTS (SELECT 1 FROM permissions.roles r WHERE r.id = role_id AND permissions.writable_scope(r.tenant_id)));
--> statement-breakpoint
CREATE POLICY role_inheritance_write_insert ON permissions.role_inheritance AS RESTRICTIVE FOR INSERT WITH CHECK (EXISTS (SELECT 1 FROM permissions.roles r WHERE r.id = role_id AND permissions.writable_scope(r.tenant_id)));
--> statement-breakpoint
CREATE POLICY role_inheritance_write_update ON permissions.role_inheritance AS RESTRICTIVE FOR UPDATE USING (EXISTS (SELECT 1 FROM permissions.roles r WHERE r.id = role_id AND permissions.writable_scope(r.tenant_id))) WITH CHECK (EXISTS (SELECT 1 FROM permissions.roles r WHERE r.id = role_id AND permissions.writable_scope(r.tenant_id)));
--> statement-breakpoint
CREATE POLICY role_inheritance_write_delete ON permissions.role_inheritance AS RESTRICTIVE FOR DELETE USING (EXISTS (SELECT 1 FROM permissions.roles r WHERE r.id = role_id AND permissions.writable_scope(r.tenant_id)));
