-- Custom migration (issue 14): database roles that hold against injected SQL.
--
-- The runtime login is not created here: a migration file holds no password. `migrate`
-- (src/db/migrate.ts) makes `sv_app` — or the login DATABASE_APP_URL names, a member of sv_app — able
-- to log in with the password of that URL, as the owner, every time it runs.
--
-- 1. Secrets out of reach of sv_readonly. Its SELECT on the tables holding them becomes a column
--    grant on everything else: session tokens; account passwords and OAuth tokens; verification
--    identifiers and values (a reset link's token is in them); TOTP secrets and backup codes; JWKS
--    private keys; and rendered mail (bodies and headers carry live verification, reset and
--    unsubscribe links). A column added later is not granted until someone decides it is safe.
--    sv_auditor reads the audit schema only (0002) and sv_app keeps everything it needs.
REVOKE SELECT ON auth.sessions, auth.accounts, auth.verifications, auth.two_factors, auth.jwks, email.email_sends, email.dev_messages FROM sv_readonly;
--> statement-breakpoint
GRANT SELECT (id, expires_at, ip_address, user_agent, user_id, active_organization_id, impersonated_by, created_at, updated_at)
  ON auth.sessions TO sv_readonly;
--> statement-breakpoint
GRANT SELECT (id, account_id, provider_id, user_id, access_token_expires_at, refresh_token_expires_at, scope, created_at, updated_at)
  ON auth.accounts TO sv_readonly;
--> statement-breakpoint
GRANT SELECT (id, expires_at, created_at, updated_at) ON auth.verifications TO sv_readonly;
--> statement-breakpoint
GRANT SELECT (id, user_id, verified, failed_verification_count, locked_until) ON auth.two_factors TO sv_readonly;
--> statement-breakpoint
GRANT SELECT (id, public_key, alg, crv, created_at, expires_at) ON auth.jwks TO sv_readonly;
--> statement-breakpoint
GRANT SELECT (id, tenant_id, user_id, to_address, from_address, template_key, locale, category, subject, status, skip_reason,
              idempotency_key, attempts, max_attempts, next_attempt_at, lease_until, claimed_by, batch_key,
              provider_message_id, last_error, sent_at, created_at, updated_at)
  ON email.email_sends TO sv_readonly;
--> statement-breakpoint
GRANT SELECT (id, send_id, to_address, from_address, subject, created_at) ON email.dev_messages TO sv_readonly;
--> statement-breakpoint
-- 2. Row-level security where 0003/0005 left a tenant able to write outside itself. The conventions
--    stay (see 0003): a tenant id in `sv.tenant_id` -> that tenant; '*' -> every tenant (system
--    work); unset -> as before. Rows are checked, not the statement: the owner (migrations, tenant
--    moves) and the SECURITY DEFINER permission functions, which run as the owner, bypass them.
--
-- 2a. Default templates (tenant_id null) and global permission_cache rows were writable from inside
--     any tenant: writes follow the rule of permissions.writable_scope (0005) — inside a tenant only
--     its own rows; platform rows only with no tenant set; '*' anywhere. Email keeps its own copy of
--     the function: the email module does not depend on permissions.
CREATE FUNCTION email.writable_scope(p_tenant uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT coalesce(pg_catalog.current_setting('sv.tenant_id', true), '') = '*'
      OR (p_tenant IS NULL AND coalesce(pg_catalog.current_setting('sv.tenant_id', true), '') = '')
      OR p_tenant::text = pg_catalog.current_setting('sv.tenant_id', true)
$$;
--> statement-breakpoint
CREATE POLICY email_templates_write_insert ON email.email_templates AS RESTRICTIVE FOR INSERT WITH CHECK (email.writable_scope(tenant_id));
--> statement-breakpoint
CREATE POLICY email_templates_write_update ON email.email_templates AS RESTRICTIVE FOR UPDATE USING (email.writable_scope(tenant_id)) WITH CHECK (email.writable_scope(tenant_id));
--> statement-breakpoint
CREATE POLICY email_templates_write_delete ON email.email_templates AS RESTRICTIVE FOR DELETE USING (email.writable_scope(tenant_id));
--> statement-breakpoint
CREATE POLICY permission_cache_write_insert ON permissions.permission_cache AS RESTRICTIVE FOR INSERT WITH CHECK (permissions.writable_scope(tenant_id));
--> statement-breakpoint
CREATE POLICY permission_cache_write_update ON permissions.permission_cache AS RESTRICTIVE FOR UPDATE USING (permissions.writable_scope(tenant_id)) WITH CHECK (permissions.writable_scope(tenant_id));
--> statement-breakpoint
CREATE POLICY permission_cache_write_delete ON permissions.permission_cache AS RESTRICTIVE FOR DELETE USING (permissions.writable_scope(tenant_id));
--> statement-breakpoint
-- 2b. Email events and development messages belong to their send's tenant (placement.ts: via
--     email_sends) but had no policy: inside a tenant, only those of the tenant's own sends.
--     Outside a tenant they stay visible as before (the webhook handler, /dev/mail).
CREATE FUNCTION email.outside_tenant() RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT coalesce(pg_catalog.current_setting('sv.tenant_id', true), '') IN ('', '*')
$$;
--> statement-breakpoint
ALTER TABLE email.email_events ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY email_events_tenant_isolation ON email.email_events USING (email.outside_tenant() OR EXISTS (SELECT 1 FROM email.email_sends s WHERE s.id = send_id));
--> statement-breakpoint
ALTER TABLE email.dev_messages ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY dev_messages_tenant_isolation ON email.dev_messages USING (email.outside_tenant() OR EXISTS (SELECT 1 FROM email.email_sends s WHERE s.id = send_id));
--> statement-breakpoint
-- 2c. The organization tables. better-auth reads and writes them with no tenant set (sign-in,
--     session lookup, creating an organization, accepting an invitation, listing a user's
--     organizations), so these policies restrict only inside a tenant: there, only the tenant's own
--     organization row, members and invitations, and only sessions acting in it or in none. The
--     USING clause is the WITH CHECK clause too: a row cannot be moved to another tenant either.
CREATE FUNCTION auth.tenant_allows(p_tenant uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT coalesce(pg_catalog.current_setting('sv.tenant_id', true), '') IN ('', '*')
      OR p_tenant::text = pg_catalog.current_setting('sv.tenant_id', true)
$$;
--> statement-breakpoint
ALTER TABLE auth.organizations ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY organizations_tenant_isolation ON auth.organizations USING (auth.tenant_allows(id));
--> statement-breakpoint
ALTER TABLE auth.members ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY members_tenant_isolation ON auth.members USING (auth.tenant_allows(organization_id));
--> statement-breakpoint
ALTER TABLE auth.invitations ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY invitations_tenant_isolation ON auth.invitations USING (auth.tenant_allows(organization_id));
--> statement-breakpoint
ALTER TABLE auth.sessions ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY sessions_tenant_isolation ON auth.sessions USING (active_organization_id IS NULL OR auth.tenant_allows(active_organization_id));
--> statement-breakpoint
-- 3. 0005 left the cache refresh functions (SECURITY DEFINER: they run as the owner) executable by
--    everyone. Only the triggers, which run as the owner, call them.
REVOKE ALL ON FUNCTION permissions.refresh_for_roles(uuid[]) FROM PUBLIC;
--> statement-breakpoint
REVOKE ALL ON FUNCTION permissions.refresh_for_users(uuid[], uuid[]) FROM PUBLIC;
