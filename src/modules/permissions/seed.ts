/**
 * Built-in global roles, seeded idempotently at start-up (the seed is authoritative: a built-in role's
 * grants are reset to these). Built-in roles cannot be changed or deleted through the API.
 *
 *   owner   `*` — everything. Assigned in a tenant (organization owners), it is everything *in that
 *           tenant* only; assigned globally, it is the platform administrator role.
 *   admin   manages a tenant: its members, roles and assignments, permission checks of others, email
 *           templates, and reads its audit trail.
 *   member  `permissions:read:self` — reads and checks its own permissions. Every user gets it
 *           globally at sign-up (assignDefaultRole); it grants nothing inside any tenant.
 *   auditor `audit:read` — reads the audit trail.
 *
 * Permission strings the permissions routes need: `roles:read`, `roles:write`, `roles:assign`,
 * `permissions:check` (checking another user), `permissions:read:self` (GET /me/permissions).
 */
import { and, eq, isNull, notInArray } from "drizzle-orm";
import type { ModuleContext } from "../../db/module.js";
import { rolePermissions, roles } from "./schema.js";

export const BUILT_IN_ROLES = {
  owner: { description: "Everything within its tenant (globally: platform administrator)", permissions: ["*"] },
  admin: {
    description: "Manages members, roles and templates of its tenant and reads its audit trail",
    permissions: ["members:*", "roles:*", "permissions:check", "email.templates:*", "audit:read"],
  },
  member: { description: "Reads its own permissions", permissions: ["permissions:read:self"] },
  auditor: { description: "Reads the audit trail", permissions: ["audit:read"] },
} as const satisfies Record<string, { description: string; permissions: readonly string[] }>;

export type BuiltInRole = keyof typeof BUILT_IN_ROLES;

/** Seeds the built-in roles where the unit of work places the module's rows (`sdk.seed()` visits every database). */
export async function seedBuiltInRoles(context: ModuleContext): Promise<void> {
  const db = context.db();
  await context.transaction(() =>
    context.withTenant(null, async () => {
      for (const [name, role] of Object.entries(BUILT_IN_ROLES)) {
        await db
          .insert(roles)
          .values({ name, description: role.description, builtIn: true })
          .onConflictDoNothing({ target: [roles.tenantId, roles.name] });
        const [row] = await db
          .select({ id: roles.id })
          .from(roles)
          .where(and(isNull(roles.tenantId), eq(roles.name, name)));
        await db.update(roles).set({ description: role.description, builtIn: true }).where(eq(roles.id, row!.id));
        await db
          .delete(rolePermissions)
          .where(
            and(eq(rolePermissions.roleId, row!.id), notInArray(rolePermissions.permission, [...role.permissions])),
          );
        await db
          .insert(rolePermissions)
          .values(role.permissions.map((permission) => ({ roleId: row!.id, permission })))
          .onConflictDoNothing();
      }
    }),
  );
}
