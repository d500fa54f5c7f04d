/**
 * CORS for the API's trusted origins. Hono's cors() adds `Vary` with c.header() after the handler,
 * which copies the finished Response on every request (measured: about a fifth of a cached GET's
 * CPU). Here the request middleware adds these headers with its own (headers.ts: where they cost
 * least, and no middleware layer of their own), and preflights get a handler.
 */
import type { Context, MiddlewareHandler } from "hono";
import { requestHeader, type ResponseHeaders } from "./headers.js";

export interface CorsOptions {
  /** Exact origins (scheme://host[:port]) allowed to call with credentials. */
  origins: readonly string[];
  allowHeaders: readonly string[];
  exposeHeaders: readonly string[];
  /** Seconds a browser may cache a preflight answer. Default 600. */
  maxAge?: number;
}

export interface Cors {
  /** The CORS headers of an actual (non-preflight) response to this request's Origin. */
  headersFor(c: Context): ResponseHeaders;
  /** Answers a preflight request (OPTIONS with Access-Control-Request-Method); passes anything else on. */
  preflight: MiddlewareHandler;
}

export function corsForOrigins(options: CorsOptions): Cors {
  const allowed = new Set(options.origins);
  const allowHeaders = options.allowHeaders.join(", ");
  const exposeHeaders = options.exposeHeaders.join(", ");
  const allowMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
  const untrusted: ResponseHeaders = { append: { vary: "Origin" } };
  const trusted = new Map<string, ResponseHeaders>();
  const trustedOrigin = (c: Context) => {
    const origin = requestHeader(c, "origin");
    return origin !== undefined && allowed.has(origin) ? origin : undefined;
  };
  return {
    headersFor(c) {
      const origin = trustedOrigin(c);
      if (origin === undefined) return untrusted;
      let headers = trusted.get(origin);
      if (!headers) {
        headers = {
          append: { vary: "Origin" },
          set: {
            "access-control-allow-origin": origin,
            "access-control-allow-credentials": "true",
            "access-control-expose-headers": exposeHeaders,
          },
        };
        trusted.set(origin, headers);
      }
      return headers;
    },
    preflight: async (c, next) => {
      if (!c.req.header("access-control-request-method")) return next();
      const origin = trustedOrigin(c);
      const headers: Record<string, string> = { vary: "Origin" };
      if (origin !== undefined) {
        headers["access-control-allow-origin"] = origin;
        headers["access-control-allow-credentials"] = "true";
        headers["access-control-allow-methods"] = allowMethods;
        headers["access-control-allow-headers"] = allowHeaders;
        headers["access-control-max-age"] = String(options.maxAge ?? 600);
      }
      return c.body(null, 204, headers);
    },
  };
}
