/**
 * Checks: `can`, `permissionsOf`, and the `requirePermission` middleware.
 *
 * A check asks the in-process cache first; a miss costs exactly one query
 * (`permissions.cached_permissions(user, tenant, store)`: the `permission_cache` row, computed on the
 * spot when missing), two for a tenant moved to a database of its own. Only a check that is a
 * transaction of its own stores the computed row (`store`); inside a unit of work it takes no lock and
 * stores nothing, so a unit that checks and then changes permissions cannot deadlock with another
 * (drizzle/0011). Inside a unit of work that changed permissions the in-process cache is bypassed, and
 * what that unit reads is never stored in it (it may roll back).
 */
import type { Context, MiddlewareHandler } from "hono";
import { sql } from "drizzle-orm";
import type { Router } from "../../db/router.js";
import { ambientTransaction } from "../../db/unit-of-work.js";
import { problemResponse } from "../../http/problem.js";
import "../../http/context.js";
import type { PermissionCache } from "./cache.js";
import { PermissionsErrors } from "./errors.js";
import { compileMatcher, isValidPermission, type Matcher } from "./matcher.js";
import { assertPermissions, inChangedUnit, scopeOf, type Scope } from "./service.js";

export interface RequirePermissionOptions {
  /**
   * Which tenant the permission is checked in: the request's tenant (`c.get("tenant")`, global when
   * none; the default), or always the global scope (platform-level routes).
   */
  tenant?: "context" | "global";
}

export function createChecks(router: Router, cache: PermissionCache) {
  const home = router.databaseOf("permissions");

  /**
   * A user's effective permissions in a tenant (or globally): one query where the module's rows are
   * (global assignments, and the tenant's unless it lives in a database of its own), and for a
   * tenant placed elsewhere a second one there — what the user holds is the union of both.
   */
  async function effectivePermissions(userId: string, tenant: string | null): Promise<string[]> {
    // The handle runs the query in the unit of work's transaction on that database when one is open,
    // else as a transaction of its own: only then may the fill store its row (drizzle/0011).
    const read = async (database: string) => {
      const rows = await router.database(database).execute<{ permissions: string[] }>(
        sql`select permissions.cached_permissions(${userId}::uuid, ${tenant}::uuid, ${ambientTransaction(database) === undefined}::boolean) as permissions`,
      );
      return rows[0]?.permissions ?? [];
    };
    const permissions = await read(home);
    const placed = tenant === null ? undefined : await router.placementOf(tenant);
    if (placed === undefined || placed === home) return permissions;
    return [...new Set([...permissions, ...(await read(placed))])];
  }

  async function matcherFor(userId: string, tenant: string | null): Promise<Matcher> {
    const bypass = inChangedUnit();
    if (!bypass) {
      const cached = cache.get(userId, tenant);
      if (cached) return cached;
    }
    const generation = cache.generation;
    const matcher = compileMatcher(await effectivePermissions(userId, tenant));
    if (!bypass) cache.set(userId, tenant, matcher, generation);
    return matcher;
  }

  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

  function checkUser(userId: string): boolean {
    return UUID.test(userId);
  }

  /**
   * Whether a user holds a permission in a tenant (global assignments count in every tenant) or, with
   * no tenant, globally.
   *
   * @example
   * if (await sdk.permissions.can(userId, "invoices:write", { tenant: tenantId })) { ... }
   */
  function can(userId: string, permission: string, scope?: Scope): Promise<boolean> {
    // The hot path: a permission this user was already asked for, answered from memory without
    // validation (only validated permissions are remembered) and without a single extra promise.
    if (!inChangedUnit()) {
      const known = cache.get(userId, scope?.tenant ?? null)?.known(permission);
      if (known !== undefined) return Promise.resolve(known);
    }
    return check(userId, permission, scope);
  }

  async function check(userId: string, permission: string, scope?: Scope): Promise<boolean> {
    if (!isValidPermission(permission)) throw PermissionsErrors.INVALID_PERMISSION({ invalid: [permission] });
    const tenant = scopeOf(scope);
    if (!checkUser(userId)) return false;
    return (await matcherFor(userId, tenant)).has(permission);
  }

  /**
   * The effective permissions of a user in a tenant (or globally), wildcards as granted.
   *
   * @example
   * const permissions = await sdk.permissions.permissionsOf(userId, { tenant: tenantId });
   */
  async function permissionsOf(userId: string, scope?: Scope): Promise<string[]> {
    const tenant = scopeOf(scope);
    if (!checkUser(userId)) return [];
    return [...(await matcherFor(userId, tenant)).permissions];
  }

  /**
   * Checks several permissions of one user at once (one lookup), answering each.
   *
   * @example
   * const results = await sdk.permissions.checkMany(userId, ["audit:read", "roles:write"], { tenant });
   */
  async function checkMany(userId: string, permissions: readonly string[], scope?: Scope): Promise<Record<string, boolean>> {
    assertPermissions(permissions);
    const tenant = scopeOf(scope);
    const matcher = checkUser(userId) ? await matcherFor(userId, tenant) : compileMatcher([]);
    return Object.fromEntries(permissions.map((p) => [p, matcher.has(p)]));
  }

  /**
   * Refuses with PERMISSION_DENIED (naming the first missing permission) unless the user holds all
   * of `permissions`. Used before handing permissions out, so nobody grants more than they hold.
   *
   * @example
   * await sdk.permissions.assertHolds(actorId, ["audit:read"], { tenant });
   */
  async function assertHolds(userId: string, permissions: readonly string[], scope?: Scope): Promise<void> {
    assertPermissions(permissions);
    const tenant = scopeOf(scope);
    const matcher = await matcherFor(userId, tenant);
    const missing = permissions.find((p) => !matcher.has(p));
    if (missing !== undefined) {
      throw PermissionsErrors.PERMISSION_DENIED(
        { permission: missing, tenant },
        `You cannot hand out '${missing}': you do not hold it${tenant ? " in this tenant" : ""}`,
      );
    }
  }

  /**
   * Hono middleware: 401 without a signed-in user, 403 problem+json (`code: "PERMISSION_DENIED"`,
   * `permission`) when the user lacks the permission in the request's tenant.
   *
   * @example
   * app.get("/invoices", sdk.permissions.requirePermission("invoices:read"), (c) => ...);
   */
  function requirePermission(permission: string, options: RequirePermissionOptions = {}): MiddlewareHandler {
    if (!isValidPermission(permission)) {
      throw new Error(`requirePermission: '${permission}' is not a permission (resource:action, or *)`);
    }
    const global = options.tenant === "global";
    const deny = (c: Context, tenant: string | null) =>
      problemResponse(c, 403, "PERMISSION_DENIED", `Missing permission '${permission}'`, { permission, tenant });
    return (c, next) => {
      const user = c.get("user");
      if (!user) return Promise.resolve(problemResponse(c, 401, "UNAUTHENTICATED", "A valid session or bearer token is required"));
      const tenant = global ? null : (c.get("tenant")?.id ?? null);
      // Answered from memory: decided without a promise of our own (see can()).
      const known = inChangedUnit() ? undefined : cache.get(user.id, tenant)?.known(permission);
      if (known === true) return next();
      if (known === false) return Promise.resolve(deny(c, tenant));
      return check(user.id, permission, { tenant }).then<Response | void>((held) => (held ? next() : deny(c, tenant)));
    };
  }

  return { can, checkMany, permissionsOf, assertHolds, requirePermission };
}
