-- Custom migration: row-level security on tenant-scoped tables, the second wall behind the services'
-- own tenant filters. The router sets `sv.tenant_id` per transaction (set_config(..., true)):
--   a tenant id  -> that tenant's rows (plus shared global rows: built-in roles, default templates)
--   '*'          -> every tenant's rows (system work: dispatcher, sealing, platform admins)
--   unset / ''   -> global rows only
-- Audit and email sends are stricter: platform rows (tenant_id null) are not shown inside a tenant.
-- Owners bypass RLS (migrations, maintenance); the runtime role sv_app does not.
ALTER TABLE permissions.roles ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY roles_tenant_isolation ON permissions.roles USING (tenant_id IS NULL OR tenant_id::text = current_setting('sv.tenant_id', true) OR current_setting('sv.tenant_id', true) = '*');
--> statement-breakpoint
ALTER TABLE permissions.user_roles ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY user_roles_tenant_isolation ON permissions.user_roles USING (tenant_id IS NULL OR tenant_id::text = current_setting('sv.tenant_id', true) OR current_setting('sv.tenant_id', true) = '*');
--> statement-breakpoint
ALTER TABLE permissions.permission_cache ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY permission_cache_tenant_isolation ON permissions.permission_cache USING (tenant_id IS NULL OR tenant_id::text = current_setting('sv.tenant_id', true) OR current_setting('sv.tenant_id', true) = '*');
--> statement-breakpoint
ALTER TABLE permissions.role_permissions ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY role_permissions_tenant_isolation ON permissions.role_permissions USING (EXISTS (SELECT 1 FROM permissions.roles r WHERE r.id = role_id));
--> statement-breakpoint
ALTER TABLE permissions.role_inheritance ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY role_inheritance_tenant_isolation ON permissions.role_inheritance USING (EXISTS (SELECT 1 FROM permissions.roles r WHERE r.id = role_id));
--> statement-breakpoint
ALTER TABLE email.email_templates ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY email_templates_tenant_isolation ON email.email_templates USING (tenant_id IS NULL OR tenant_id::text = current_setting('sv.tenant_id', true) OR current_setting('sv.tenant_id', true) = '*');
--> statement-breakpoint
ALTER TABLE email.email_sends ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY email_sends_tenant_isolation ON email.email_sends USING (current_setting('sv.tenant_id', true) = '*' OR tenant_id::text = current_setting('sv.tenant_id', true) OR (tenant_id IS NULL AND coalesce(current_setting('sv.tenant_id', true), '') = ''));
--> statement-breakpoint
ALTER TABLE audit.audit_logs ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY audit_logs_tenant_isolation ON audit.audit_logs USING (current_setting('sv.tenant_id', true) = '*' OR tenant_id::text = current_setting('sv.tenant_id', true) OR (tenant_id IS NULL AND coalesce(current_setting('sv.tenant_id', true), '') = ''));
--> statement-breakpoint
ALTER TABLE audit.audit_seals ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY audit_seals_tenant_isolation ON audit.audit_seals USING (current_setting('sv.tenant_id', true) = '*' OR tenant_id::text = current_setting('sv.tenant_id', true) OR (tenant_id IS NULL AND coalesce(current_setting('sv.tenant_id', true), '') = ''));
