/**
 * The permissions model shared by its verbs: scopes, the shapes verbs return, permission-string
 * validation, and the marks that make a unit of work which changed permissions read its own writes.
 */
import { eq, isNull, sql } from "drizzle-orm";
import { currentContext, currentLevel, type UnitLevel } from "../../db/unit-of-work.js";
import { PermissionsErrors } from "./errors.js";
import { isValidPermission } from "./matcher.js";
import type { AnyPgColumn } from "drizzle-orm/pg-core";
import { type roles, userRoles } from "./schema.js";
import { UUID } from "../../uuid.js";

export { UUID };

/** The organization member roles mirrored into tenant-scoped assignments of the same built-in roles. */
export const MEMBER_ROLES = ["owner", "admin", "member"] as const;
/**
 * The model lock (drizzle/0011: advisory class 1936683632 = 'sv_p', key 0), exclusive to the end of
 * the transaction: every change of roles, grants, parents or assignments holds it before its first row.
 */
export const MODEL_LOCK = sql`select pg_advisory_xact_lock(1936683632, 0)`;

/** The explicit spelling of the global scope: `{ tenant: "global" }`. */
export const GLOBAL = "global";

export interface Scope {
  /**
   * A tenant id, or `"global"` (or null) for the global scope, where only global assignments count.
   * Omitted, it is the unit of work's tenant — the request's, or `sdk.withTenant`'s — as in audit and
   * email; outside a tenant (or in platform work, `"*"`) that is the global scope.
   */
  tenant?: typeof GLOBAL | (string & {}) | null;
}

export interface Role {
  id: string;
  tenantId: string | null;
  name: string;
  description: string | null;
  builtIn: boolean;
  /** Permissions granted directly (not through parents). */
  permissions: string[];
  /** Ids of the roles this one inherits from. */
  inherits: string[];
  createdAt: Date;
  updatedAt: Date;
}

export interface Assignment {
  id: string;
  userId: string;
  roleId: string;
  roleName: string;
  /** null: a global assignment, effective in every tenant. */
  tenantId: string | null;
  assignedBy: string | null;
  createdAt: Date;
}

export interface CreateRoleInput {
  name: string;
  description?: string | null;
  permissions?: string[];
  /** Role ids or names (global or of the same tenant) to inherit from. */
  inherits?: string[];
}

export type RoleRow = typeof roles.$inferSelect;

/** One page of roles; `nextCursor` is null on the last page. */
export interface RolePage {
  roles: Role[];
  nextCursor: string | null;
}

/** One page of assignments; `nextCursor` is null on the last page. */
export interface AssignmentPage {
  assignments: Assignment[];
  nextCursor: string | null;
}

/** Units of work (their outermost level) that changed permissions: their checks bypass the cache. */
export const changedUnits = new WeakSet<UnitLevel>();

export function rootLevel(): UnitLevel | undefined {
  let level = currentLevel();
  while (level?.parent) level = level.parent;
  return level;
}

/** True inside a unit of work that changed permissions: checks must read its own writes. */
export function inChangedUnit(): boolean {
  const root = rootLevel();
  return root !== undefined && changedUnits.has(root);
}

/** The tenant a verb acts in: a validated tenant id, or null for the global scope. */
/** The tenant an omitted scope means: the unit of work's, if it is one tenant. */
export function ambientTenant(): string | null {
  const tenant = currentContext().tenantId;
  return tenant === undefined || tenant === "*" ? null : tenant;
}

export function scopeOf(scope: Scope | undefined): string | null {
  const tenant = scope?.tenant === undefined ? ambientTenant() : scope.tenant;
  if (tenant === null || tenant === GLOBAL) return null;
  if (!UUID.test(tenant)) throw PermissionsErrors.INVALID_TENANT({ tenant });
  return tenant;
}

export function assertPermissions(permissions: readonly string[]): void {
  const invalid = permissions.filter((p) => !isValidPermission(p));
  if (invalid.length > 0) throw PermissionsErrors.INVALID_PERMISSION({ invalid });
}

export function actorUserId(): string | null {
  const actor = currentContext().actor;
  return actor?.type === "user" ? actor.id : null;
}

export function tenantIs(tenant: string | null, column: AnyPgColumn = userRoles.tenantId) {
  return tenant === null ? isNull(column) : eq(column, tenant);
}
