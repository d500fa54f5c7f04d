/**
 * Every way out of a tenant ends the same, in the unit of work that makes it: removed by an admin,
 * left, the tenant deleted, the user banned or deleted. The user's assignments in the tenant all go
 * (mirrored member role, `auditor`, custom roles — each audited), sessions stop acting in it (their
 * active organization is cleared and cookie-cached copies are confirmed against the database), and
 * every instance drops its cached memberships of the user. Membership is then the gate
 * (memberships.ts): nothing of the old tenant is reachable on the next request.
 */
import { and, eq, inArray } from "drizzle-orm";
import type { ModuleContext } from "../../db/module.js";
import { declareCrossDatabaseUnit } from "../../db/unit-of-work.js";
import type { PermissionsModule } from "../permissions/index.js";
import type { Revocations } from "./revocations.js";
import { members, sessions } from "./schema.js";

export interface TenantExitsDependencies {
  context: ModuleContext;
  permissions: PermissionsModule;
  revocations: Revocations;
}

/** The user leaves `tenantIds` (the reason names how, for the audit trail). */
/**
 * Why a membership change may write two databases: main's membership and the roles it mirrors in a
 * tenant placed elsewhere commit in one unit, the tenant's database first and main last (README,
 * "Known limits"); moving it to the outbox is the next step.
 */
export const MEMBERSHIP_MIRROR = "a membership change mirrored into a tenant on another database";

async function leave(
  deps: TenantExitsDependencies,
  userId: string,
  tenantIds: readonly string[],
  reason: string,
): Promise<void> {
  if (tenantIds.length === 0) return;
  declareCrossDatabaseUnit(MEMBERSHIP_MIRROR);
  for (const tenantId of tenantIds) await deps.permissions.revokeTenantAccess({ userId, tenantId, reason });
  await deps.context
    .db()
    .update(sessions)
    .set({ activeOrganizationId: null })
    .where(and(eq(sessions.userId, userId), inArray(sessions.activeOrganizationId, [...tenantIds])));
  await deps.revocations.revokeUser(userId);
  await deps.revocations.membershipChanged(userId);
}

/** The tenants the user is a member of. */
async function tenantsOf(deps: TenantExitsDependencies, userId: string): Promise<string[]> {
  const rows = await deps.context
    .db()
    .select({ tenantId: members.organizationId })
    .from(members)
    .where(eq(members.userId, userId));
  return rows.map((r) => r.tenantId);
}

/** The user leaves one tenant. */
export function leaveTenant(
  deps: TenantExitsDependencies,
  userId: string,
  tenantId: string,
  reason: string,
): Promise<void> {
  return leave(deps, userId, [tenantId], reason);
}

/** The user leaves every tenant they are in or hold an assignment in (a ban, a deletion). */
export async function leaveAllTenants(deps: TenantExitsDependencies, userId: string, reason: string): Promise<void> {
  const tenants = new Set([
    ...(await tenantsOf(deps, userId)),
    ...(await deps.permissions.tenantsWithAssignments(userId)),
  ]);
  await leave(deps, userId, [...tenants], reason);
}

/** Everyone leaves a tenant about to be deleted. */
export async function closeTenant(deps: TenantExitsDependencies, tenantId: string): Promise<void> {
  const rows = await deps.context
    .db()
    .select({ userId: members.userId })
    .from(members)
    .where(eq(members.organizationId, tenantId));
  for (const { userId } of rows) await leave(deps, userId, [tenantId], "tenant.deleted");
}

/** After an unban: the mirrored member roles of the user's memberships come back (custom roles do not). */
export async function restoreMemberRoles(deps: TenantExitsDependencies, userId: string): Promise<void> {
  const rows = await deps.context
    .db()
    .select({ tenantId: members.organizationId, role: members.role })
    .from(members)
    .where(eq(members.userId, userId));
  for (const { tenantId, role } of rows) await deps.permissions.syncMemberRole({ userId, tenantId, role });
  await deps.revocations.membershipChanged(userId);
}
