/**
 * `requirePermission`: the Hono middleware that guards a route with a permission — this module's
 * routes, the other modules' (they receive it as a `PermissionGuard`) and an application's own. It
 * decides and throws; the app's one problem+json mapper answers 401 `UNAUTHENTICATED` without a
 * signed-in user and 403 `PERMISSION_DENIED` (naming the permission and the tenant) without it.
 */
import type { MiddlewareHandler } from "hono";
import { tenantOf, userOf, type RequirePermissionOptions } from "../../http/kit/index.js";
import { check, knownAnswer } from "./checks.js";
import { permissionDenied } from "./errors.js";
import type { PermissionsDeps } from "./internal.js";
import { isValidPermission } from "./matcher.js";

export type { RequirePermissionOptions };

/** The guard's signature, as the module's face exposes it. */
export type RequirePermission = (permission: string, options?: RequirePermissionOptions) => MiddlewareHandler;

export function requirePermission(
  deps: PermissionsDeps,
  permission: string,
  options: RequirePermissionOptions = {},
): MiddlewareHandler {
  // A typo in a route's permission is a bug of the application: it fails at start-up, not per request.
  if (!isValidPermission(permission)) {
    throw new Error(`requirePermission: '${permission}' is not a permission (resource:action, or *)`);
  }
  const global = options.tenant === "global";
  return (c, next) => {
    const user = userOf(c);
    const tenant = global ? null : tenantOf(c);
    // Answered from memory: decided without a promise of our own (see can()).
    const known = knownAnswer(deps, user.id, permission, tenant);
    if (known === true) return next();
    if (known === false) throw permissionDenied(permission, tenant);
    return check(deps, user.id, permission, { tenant }).then((held) => {
      if (!held) throw permissionDenied(permission, tenant);
      return next();
    });
  };
}
