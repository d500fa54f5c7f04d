/**
 * Where each table may live — the label DESIGN asks every table to carry, read by people planning a
 * split and checked by a test against the database (every table labelled, every label a table).
 *
 * - `control-plane`: only in the main database. Identities, sessions, tenants and tenant placement
 *   are what every other database's rows refer to.
 * - `schema`: wherever the topology places its module's schema; not split by tenant.
 * - `tenant`: wherever its schema is placed, or in a tenant's dedicated database: its rows carry
 *   `tenant_id` (or reach it through `via`), and `tenant:move` copies them. Rows with a null tenant
 *   (built-in roles, default templates, platform events) are platform rows and stay.
 */
export type Placement =
  | { kind: "control-plane" }
  | { kind: "schema" }
  | { kind: "tenant"; via?: string };

const controlPlane: Placement = { kind: "control-plane" };
const schema: Placement = { kind: "schema" };
const tenant: Placement = { kind: "tenant" };

export const TABLE_PLACEMENT: Readonly<Record<string, Placement>> = {
  "auth.users": controlPlane,
  "auth.sessions": controlPlane,
  "auth.accounts": controlPlane,
  "auth.verifications": controlPlane,
  "auth.organizations": controlPlane,
  "auth.members": controlPlane,
  "auth.invitations": controlPlane,
  "auth.jwks": controlPlane,
  "auth.two_factors": controlPlane,
  "auth.rate_limits": controlPlane,
  "auth.session_revocations": controlPlane,
  "auth.tenant_placements": controlPlane,
  "auth.tenant_moves": controlPlane,

  "permissions.roles": tenant,
  "permissions.role_permissions": { kind: "tenant", via: "permissions.roles" },
  "permissions.role_inheritance": { kind: "tenant", via: "permissions.roles" },
  "permissions.user_roles": tenant,
  "permissions.permission_cache": tenant,

  "audit.audit_logs": tenant,
  "audit.audit_seals": tenant,

  "email.email_templates": tenant,
  "email.email_sends": tenant,
  "email.email_events": { kind: "tenant", via: "email.email_sends" },
  "email.dev_messages": { kind: "tenant", via: "email.email_sends" },
  "email.email_preferences": schema,
  "email.suppressions": schema,
};
