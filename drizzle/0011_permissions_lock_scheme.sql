-- Custom migration: the permission cache's lock scheme, without deadlocks (replaces 0005's scheme;
-- 0005 itself stays as it was applied).
--
-- What deadlocked (issue 13, point 10): 0005's fill took key 0 SHARED and kept it to the end of its
-- transaction, assignment changes shared it too, and role changes needed it EXCLUSIVELY. A unit of work
-- that checked a permission (a fill) or assigned a role, and then changed a role, upgraded the lock:
-- two such units each held it shared and waited for the other to let go.
--
-- The scheme now (advisory lock class 1936683632 = 'sv_p', key 0, in each database):
--   * Every change of the model holds key 0 EXCLUSIVELY from before its first row until its transaction
--     ends: one key, one mode, so nothing is ever upgraded and one transaction at a time holds it. The
--     statement triggers below take it BEFORE every write to roles, role_permissions, role_inheritance
--     and user_roles, and before deletes of permission_cache rows — whoever writes (the SDK's verbs, the
--     seed, foreign-key cascades from auth.users and auth.organizations, hand-written SQL). The SDK's
--     verbs also take it as their first statement, so what they read before writing is current too.
--   * A fill stores a row only when its caller says the check is a transaction of its own (p_store), the
--     transaction is READ COMMITTED, and key 0 is free to share right now (pg_try_…: a fill never waits
--     for it). Otherwise the fill answers what it computed and stores nothing. Inside a unit of work a
--     check therefore takes no lock at all: checking first and changing afterwards upgrades nothing.
--   * Before storing, the fill takes the user's (and tenant's) row FOR KEY SHARE SKIP LOCKED — what the
--     foreign-key checks of its INSERT would otherwise wait for — and stores nothing when a user or tenant
--     is being deleted. The only lock a fill can still wait for is a permission_cache entry, and only
--     another fill writes one while a fill holds key 0 shared.
--
-- Deadlock-free: a fill waits for nothing a unit of work holds, so it is in no cycle. A change waits for
-- key 0 only behind its one holder (or fills, which finish on their own); for a cycle the holder would
-- have to wait for a lock of a unit that is still waiting for key 0 — but such a unit has written no
-- permission row yet (its writes all come after key 0), so only locks outside this schema could close it.
--
-- Kept from 0005: a fill never computes before, and stores after, a change it does not see. It computes
-- and stores inside one READ COMMITTED statement while holding key 0 shared, from a snapshot taken after
-- the lock; a change it does not see either held key 0 then (the fill stores nothing) or takes it after
-- the fill committed, and its triggers then recompute the stored row from a newer snapshot.
-- Changes themselves must run READ COMMITTED (the default) for that last step to see the row.
CREATE FUNCTION permissions.cached_permissions(p_user uuid, p_tenant uuid, p_store boolean) RETURNS text[]
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result text[];
BEGIN
  SELECT c.permissions INTO result FROM permissions.permission_cache c
   WHERE c.user_id = p_user AND (c.tenant_id = p_tenant OR (p_tenant IS NULL AND c.tenant_id IS NULL));
  IF FOUND THEN
    RETURN result;
  END IF;
  -- Nested, not one condition: the lock must not be taken at all unless the first two hold (a shared
  -- lock kept to the end of a unit of work is what deadlocked). A caller that passes p_store inside a
  -- longer transaction risks only that, never a stale row: the lock is then held until it commits.
  IF p_store AND current_setting('transaction_isolation') = 'read committed' THEN
    IF pg_try_advisory_xact_lock_shared(1936683632, 0) THEN
      -- A new statement: in READ COMMITTED its snapshot sees every change committed before the lock.
      result := permissions.effective_permissions(p_user, p_tenant);
      -- Users without any permission are not stored (nothing to go stale, and no row for ids that are
      -- not users); nor is anyone whose user or tenant row another transaction is deleting.
      IF cardinality(result) = 0 THEN
        RETURN result;
      END IF;
      PERFORM 1 FROM auth.users u WHERE u.id = p_user FOR KEY SHARE SKIP LOCKED;
      IF NOT FOUND THEN
        RETURN result;
      END IF;
      IF p_tenant IS NOT NULL THEN
        PERFORM 1 FROM auth.organizations o WHERE o.id = p_tenant FOR KEY SHARE SKIP LOCKED;
        IF NOT FOUND THEN
          RETURN result;
        END IF;
      END IF;
      INSERT INTO permissions.permission_cache AS c (user_id, tenant_id, permissions)
      VALUES (p_user, p_tenant, result)
      ON CONFLICT ON CONSTRAINT permission_cache_user_tenant_key
      DO UPDATE SET permissions = excluded.permissions, computed_at = now();
      RETURN result;
    END IF;
  END IF;
  RETURN permissions.effective_permissions(p_user, p_tenant);
END $$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION permissions.cached_permissions(uuid, uuid, boolean) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION permissions.cached_permissions(uuid, uuid, boolean) TO sv_app;
--> statement-breakpoint
-- 0005's two-argument form, for instances of the previous release during a rolling deploy: it answers
-- like a check inside a unit of work (no lock, nothing stored), so they cannot deadlock either.
-- Nothing in this release calls it; a later migration drops it.
CREATE OR REPLACE FUNCTION permissions.cached_permissions(p_user uuid, p_tenant uuid) RETURNS text[]
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT permissions.cached_permissions(p_user, p_tenant, false)
$$;
--> statement-breakpoint
-- Taken before every write statement on the model (see above). No security definer: it needs no
-- privilege, and a trigger function cannot be called directly.
CREATE FUNCTION permissions.lock_for_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(1936683632, 0);
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER roles_lock_for_change BEFORE INSERT OR UPDATE OR DELETE ON permissions.roles
  FOR EACH STATEMENT EXECUTE FUNCTION permissions.lock_for_change();
--> statement-breakpoint
CREATE TRIGGER role_permissions_lock_for_change BEFORE INSERT OR UPDATE OR DELETE ON permissions.role_permissions
  FOR EACH STATEMENT EXECUTE FUNCTION permissions.lock_for_change();
--> statement-breakpoint
CREATE TRIGGER role_inheritance_lock_for_change BEFORE INSERT OR UPDATE OR DELETE ON permissions.role_inheritance
  FOR EACH STATEMENT EXECUTE FUNCTION permissions.lock_for_change();
--> statement-breakpoint
CREATE TRIGGER user_roles_lock_for_change BEFORE INSERT OR UPDATE OR DELETE ON permissions.user_roles
  FOR EACH STATEMENT EXECUTE FUNCTION permissions.lock_for_change();
--> statement-breakpoint
-- Fills insert and refreshes update under key 0 already; deletes (cascades from a deleted user or
-- tenant, tenant moves) take it here before their first row.
CREATE TRIGGER permission_cache_lock_for_delete BEFORE DELETE ON permissions.permission_cache
  FOR EACH STATEMENT EXECUTE FUNCTION permissions.lock_for_change();
--> statement-breakpoint
-- An assignment change now takes key 0 exclusively, like every change (0005 shared it and locked the
-- users' own keys): one key, one mode.
CREATE OR REPLACE FUNCTION permissions.refresh_for_users(p_users uuid[], p_tenants uuid[]) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  distinct_users uuid[];
BEGIN
  IF cardinality(p_users) = 0 THEN
    RETURN;
  END IF;
  SELECT array_agg(DISTINCT u ORDER BY u) INTO distinct_users FROM unnest(p_users) AS u;
  PERFORM pg_advisory_xact_lock(1936683632, 0);
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
-- The paged assignments list (GET /api/v1/permissions/assignments) walks a tenant's rows in
-- (created_at, id) order; this index serves it and every lookup by tenant the old one served.
DROP INDEX "permissions"."user_roles_tenant_idx";
--> statement-breakpoint
CREATE INDEX "user_roles_tenant_created_idx" ON "permissions"."user_roles" USING btree ("tenant_id","created_at","id");
