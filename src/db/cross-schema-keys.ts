/**
 * Every foreign key that crosses a module boundary, in one visible place. Modules stay free of each
 * other's imports (permissions and email do not import auth's tables); these keys are created by the
 * `0001_cross_schema_keys` migration, and a test checks each one exists. When a schema moves to a
 * database of its own, these are the keys that become loose (cleaned up on delete instead).
 */
export interface CrossSchemaKey {
  name: string;
  from: { schema: string; table: string; column: string };
  to: { schema: string; table: string; column: string };
  onDelete: "cascade" | "set null";
}

const key = (
  name: string,
  from: string,
  to: string,
  onDelete: CrossSchemaKey["onDelete"],
): CrossSchemaKey => {
  const [fs, ft, fc] = from.split(".") as [string, string, string];
  const [ts, tt, tc] = to.split(".") as [string, string, string];
  return { name, from: { schema: fs, table: ft, column: fc }, to: { schema: ts, table: tt, column: tc }, onDelete };
};

export const CROSS_SCHEMA_KEYS: readonly CrossSchemaKey[] = [
  key("roles_tenant_fk", "permissions.roles.tenant_id", "auth.organizations.id", "cascade"),
  key("user_roles_user_fk", "permissions.user_roles.user_id", "auth.users.id", "cascade"),
  key("user_roles_tenant_fk", "permissions.user_roles.tenant_id", "auth.organizations.id", "cascade"),
  key("user_roles_assigned_by_fk", "permissions.user_roles.assigned_by", "auth.users.id", "set null"),
  key("permission_cache_user_fk", "permissions.permission_cache.user_id", "auth.users.id", "cascade"),
  key("permission_cache_tenant_fk", "permissions.permission_cache.tenant_id", "auth.organizations.id", "cascade"),
  key("email_templates_tenant_fk", "email.email_templates.tenant_id", "auth.organizations.id", "cascade"),
  key("email_sends_tenant_fk", "email.email_sends.tenant_id", "auth.organizations.id", "set null"),
  key("email_sends_user_fk", "email.email_sends.user_id", "auth.users.id", "set null"),
  key("email_preferences_user_fk", "email.email_preferences.user_id", "auth.users.id", "cascade"),
];
