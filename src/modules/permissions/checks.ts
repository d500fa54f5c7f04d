/**
 * Checks: `can`, `checkMany`, `permissionsOf`, `assertHolds` (the HTTP guard, guard.ts, decides with
 * `knownAnswer` and `check`).
 *
 * A check asks the in-process cache first; a miss costs exactly one query
 * (`permissions.cached_permissions(user, tenant, store)`: the `permission_cache` row, computed on the
 * spot when missing), two for a tenant moved to a database of its own. Only a check that is a
 * transaction of its own stores the computed row (`store`); inside a unit of work it takes no lock and
 * stores nothing, so a unit that checks and then changes permissions cannot deadlock with another
 * (drizzle/0011). Inside a unit of work that changed permissions the in-process cache is bypassed, and
 * what that unit reads is never stored in it (it may roll back).
 */
import { sql } from "drizzle-orm";
import { PermissionsErrors } from "./errors.js";
import type { PermissionsDeps } from "./internal.js";
import { compileMatcher, isValidPermission, type Matcher } from "./matcher.js";
import { ambientTenant, assertPermissions, GLOBAL, inChangedUnit, scopeOf, UUID, type Scope } from "./model.js";

/**
 * A user's effective permissions in a tenant (or globally): one query where the module's home rows
 * are (global assignments, and the tenant's unless it lives in a database of its own), and for a
 * tenant placed elsewhere a second one there — what the user holds is the union of both.
 */
async function effectivePermissions(
  { context }: PermissionsDeps,
  userId: string,
  tenant: string | null,
): Promise<string[]> {
  // The handle runs the query in the unit of work's transaction when one is open, else as a
  // transaction of its own: only then may the fill store its row (drizzle/0011).
  const store = !context.inUnitOfWork();
  const answers = await context.homeAndTenant(tenant, async () => {
    const rows = await context
      .db()
      .execute<{ permissions: string[] }>(
        sql`select permissions.cached_permissions(${userId}::uuid, ${tenant}::uuid, ${store}::boolean) as permissions`,
      );
    return rows[0]?.permissions ?? [];
  });
  // Sorted as one database's answer is: the union of two would otherwise depend on the order of the places.
  return answers.length === 1 ? answers[0]! : [...new Set(answers.flat())].sort();
}

async function matcherFor(deps: PermissionsDeps, userId: string, tenant: string | null): Promise<Matcher> {
  const { cache } = deps;
  const bypass = inChangedUnit();
  if (!bypass) {
    const cached = cache.get(userId, tenant);
    if (cached) return cached;
  }
  const generation = cache.generation;
  const matcher = compileMatcher(await effectivePermissions(deps, userId, tenant));
  if (!bypass) cache.set(userId, tenant, matcher, generation);
  return matcher;
}

/**
 * The answer remembered for a permission this user was already asked for in `tenant`, without
 * validation (only validated permissions are remembered) and without a promise; undefined when
 * there is none, or when the unit of work changed permissions (it must read its own writes).
 */
export function knownAnswer(
  { cache }: PermissionsDeps,
  userId: string,
  permission: string,
  tenant: string | null,
): boolean | undefined {
  if (inChangedUnit()) return undefined;
  return cache.get(userId, tenant)?.known(permission);
}

export function can(deps: PermissionsDeps, userId: string, permission: string, scope?: Scope): Promise<boolean> {
  // The hot path: answered from memory without a single extra promise. The scope is not validated
  // here: an invalid tenant has nothing remembered, and check() refuses it.
  const tenant = scope?.tenant === undefined ? ambientTenant() : scope.tenant;
  const known = knownAnswer(deps, userId, permission, tenant === GLOBAL ? null : tenant);
  if (known !== undefined) return Promise.resolve(known);
  return check(deps, userId, permission, scope);
}

/** A check that asks the cache only through `matcherFor` (what `can` does on a miss). */
export async function check(
  deps: PermissionsDeps,
  userId: string,
  permission: string,
  scope?: Scope,
): Promise<boolean> {
  if (!isValidPermission(permission)) throw PermissionsErrors.INVALID_PERMISSION({ invalid: [permission] });
  const tenant = scopeOf(scope);
  if (!UUID.test(userId)) return false;
  return (await matcherFor(deps, userId, tenant)).has(permission);
}

export async function permissionsOf(deps: PermissionsDeps, userId: string, scope?: Scope): Promise<string[]> {
  const tenant = scopeOf(scope);
  if (!UUID.test(userId)) return [];
  return [...(await matcherFor(deps, userId, tenant)).permissions];
}

export async function checkMany(
  deps: PermissionsDeps,
  userId: string,
  permissions: readonly string[],
  scope?: Scope,
): Promise<Record<string, boolean>> {
  assertPermissions(permissions);
  const tenant = scopeOf(scope);
  const matcher = UUID.test(userId) ? await matcherFor(deps, userId, tenant) : compileMatcher([]);
  return Object.fromEntries(permissions.map((p) => [p, matcher.has(p)]));
}

/** Used before handing permissions out, so nobody grants more than they hold. */
export async function assertHolds(
  deps: PermissionsDeps,
  userId: string,
  permissions: readonly string[],
  scope?: Scope,
): Promise<void> {
  assertPermissions(permissions);
  const tenant = scopeOf(scope);
  const matcher = await matcherFor(deps, userId, tenant);
  const missing = permissions.find((p) => !matcher.has(p));
  if (missing !== undefined) {
    throw PermissionsErrors.PERMISSION_DENIED(
      { permission: missing, tenant },
      `You cannot hand out '${missing}': you do not hold it${tenant ? " in this tenant" : ""}`,
    );
  }
}
