/**
 * Built-in global roles, seeded idempotently at start-up:
 *   owner   — everything in its tenant (`*`)
 *   admin   — manages members, roles and email templates in its tenant, reads its audit trail
 *   member  — reads its own permissions
 *   auditor — reads the audit trail (`audit:read`)
 */
import { and, eq, isNull } from "drizzle-orm";
import type { Router } from "../../db/router.js";
import { rolePermissions, roles } from "./schema.js";

export const BUILT_IN_ROLES = {
  owner: { description: "Everything within its tenant", permissions: ["*"] },
  admin: {
    description: "Manages members, roles and templates of its tenant and reads its audit trail",
    permissions: ["members:*", "roles:*", "permissions:read", "email.templates:*", "audit:read"],
  },
  member: { description: "A member of a tenant", permissions: ["permissions:read:self"] },
  auditor: { description: "Reads the audit trail", permissions: ["audit:read"] },
} as const satisfies Record<string, { description: string; permissions: readonly string[] }>;

export type BuiltInRole = keyof typeof BUILT_IN_ROLES;

export async function seedBuiltInRoles(router: Router): Promise<void> {
  const db = router.db("permissions");
  await router.transaction(async () => {
    for (const [name, role] of Object.entries(BUILT_IN_ROLES)) {
      await db
        .insert(roles)
        .values({ name, description: role.description, builtIn: true })
        .onConflictDoNothing({ target: [roles.tenantId, roles.name] });
      const [row] = await db
        .select({ id: roles.id })
        .from(roles)
        .where(and(isNull(roles.tenantId), eq(roles.name, name)));
      await db
        .insert(rolePermissions)
        .values(role.permissions.map((permission) => ({ roleId: row!.id, permission })))
        .onConflictDoNothing();
    }
  });
}
