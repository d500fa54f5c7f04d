/**
 * The HTTP kit: everything a module's routes may use, and nothing else of the app. Routes files
 * import from here (service files import no Hono at all): the route factory and its response
 * helpers, the request's user and tenant, `requireSession`, the permission guard a module receives,
 * and the problem document.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { z } from "@hono/zod-openapi";
import { CommonErrors } from "../../errors.js";
import "../context.js";

export { createRoutes, errorResponses, ProblemSchema } from "../routes.js";
export { problemResponse } from "../problem.js";
export { requestHeader } from "../headers.js";
export { escapeHtml } from "../html.js";
export type { SessionInfo, SessionUser, TenantInfo } from "../context.js";

/** A JSON request body for a route definition. */
export const jsonBody = <T extends z.ZodType>(schema: T) => ({
  required: true,
  content: { "application/json": { schema } },
});

/** A JSON response for a route definition. */
export const jsonResponse = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

/** The tenant the request acts in (null: the global scope). */
export const tenantOf = (c: Context): string | null => c.get("tenant")?.id ?? null;

/** The signed-in user: 401 problem when there is none. */
export function userOf(c: Context) {
  const user = c.get("user");
  if (!user) throw CommonErrors.UNAUTHENTICATED();
  return user;
}

/** 401 problem+json unless the request carries a valid session. */
export const requireSession: MiddlewareHandler = async (c, next) => {
  if (!c.get("user")) throw CommonErrors.SESSION_REQUIRED();
  await next();
};

export interface RequirePermissionOptions {
  /**
   * Which tenant the permission is checked in: the request's (global when none; the default), or
   * always the global scope (platform-level routes).
   */
  tenant?: "context" | "global";
}

/**
 * What a module's routes receive to guard themselves (the permissions module provides it): 401
 * without a user, 403 `PERMISSION_DENIED` naming the permission without it.
 */
export interface PermissionGuard {
  requirePermission(permission: string, options?: RequirePermissionOptions): MiddlewareHandler;
}
