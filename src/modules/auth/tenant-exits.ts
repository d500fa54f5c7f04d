/**
 * Every way out of a tenant ends the same, in the unit of work that makes it: removed by an admin,
 * left, the tenant deleted, the user banned or deleted. The user's assignments in the tenant all go
 * (mirrored member role, `auditor`, custom roles — each audited), sessions stop acting in it (their
 * active organization is cleared and cookie-cached copies are confirmed against the database), and
 * every instance drops its cached memberships of the user. Membership is then the gate
 * (memberships.ts): nothing of the old tenant is reachable on the next request.
 */
import { and, eq, inArray } from "drizzle-orm";
import type { Router } from "../../db/router.js";
import type { PermissionsModule } from "../permissions/index.js";
import type { Revocations } from "./revocations.js";
import { members, sessions } from "./schema.js";

export interface TenantExitsDependencies {
  router: Router;
  permissions: PermissionsModule;
  revocations: Revocations;
}

export function createTenantExits({ router, permissions, revocations }: TenantExitsDependencies) {
  const db = () => router.db("auth");

  /** The user leaves `tenantIds` (the reason names how, for the audit trail). */
  async function leave(userId: string, tenantIds: readonly string[], reason: string): Promise<void> {
    if (tenantIds.length === 0) return;
    for (const tenantId of tenantIds) await permissions.revokeTenantAccess({ userId, tenantId, reason });
    await db()
      .update(sessions)
      .set({ activeOrganizationId: null })
      .where(and(eq(sessions.userId, userId), inArray(sessions.activeOrganizationId, [...tenantIds])));
    await revocations.revokeUser(userId);
    await revocations.membershipChanged(userId);
  }

  /** The tenants the user is a member of. */
  async function tenantsOf(userId: string): Promise<string[]> {
    const rows = await db().select({ tenantId: members.organizationId }).from(members).where(eq(members.userId, userId));
    return rows.map((r) => r.tenantId);
  }

  return {
    /** One tenant. */
    leaveTenant: (userId: string, tenantId: string, reason: string) => leave(userId, [tenantId], reason),
    /** Every tenant the user is in or holds an assignment in (a ban, a deletion). */
    async leaveAll(userId: string, reason: string): Promise<void> {
      const tenants = new Set([...(await tenantsOf(userId)), ...(await permissions.tenantsWithAssignments(userId))]);
      await leave(userId, [...tenants], reason);
    },
    /** Everyone in a tenant about to be deleted. */
    async closeTenant(tenantId: string): Promise<void> {
      const rows = await db().select({ userId: members.userId }).from(members).where(eq(members.organizationId, tenantId));
      for (const { userId } of rows) await leave(userId, [tenantId], "tenant.deleted");
    },
    /** After an unban: the mirrored member roles of the user's memberships come back (custom roles do not). */
    async restoreMemberRoles(userId: string): Promise<void> {
      const rows = await db()
        .select({ tenantId: members.organizationId, role: members.role })
        .from(members)
        .where(eq(members.userId, userId));
      for (const { tenantId, role } of rows) await permissions.syncMemberRole({ userId, tenantId, role });
      await revocations.membershipChanged(userId);
    },
  };
}

export type TenantExits = ReturnType<typeof createTenantExits>;
