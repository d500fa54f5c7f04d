/**
 * The HTTP side of auth: the request context for `/api/v1` (`c.get("user")`, `c.get("session")`,
 * `c.get("tenant")`, and the unit of work's actor and tenant), and the guards of `/api/auth/*` that
 * run before the request's unit of work (rate limits, password work). The session comes from
 * better-auth (cookie or bearer token); its refreshed cookies are forwarded (better-auth#1752: a
 * server-side getSession drops them otherwise).
 */
import type { Context, MiddlewareHandler, Next } from "hono";
import { z } from "@hono/zod-openapi";
import { requestHeader, type SessionInfo, type SessionUser } from "../../http/kit/index.js";
import type { BetterAuth } from "./better-auth.js";
import { AuthErrors } from "./errors.js";
import type { Memberships } from "./memberships.js";
import { hashesPasswords, type PasswordWorker } from "./password-work.js";
import type { AuthRateLimit } from "./rate-limit.js";
import type { Revocations } from "./revocations.js";
import type { SessionCache } from "./session-cache.js";
import { actInRequest, resolveSession, type ResolvedSession, type SessionActor } from "./sessions.js";

const tenantHeader = z.uuid();

/** The route below `/api/auth` a request asks for. */
const authPath = (c: Context) => c.req.path.slice(c.req.path.indexOf("/api/auth") + "/api/auth".length);

/** `/api/auth/*`: 429 problem+json with Retry-After over the limit. Mount it before the unit of work. */
export function createRateLimitMiddleware(limiter: AuthRateLimit): MiddlewareHandler {
  return async (c, next) => {
    const counting = limiter.limit(authPath(c));
    if (counting) await counting;
    return next();
  };
}

/** `/api/auth/*` (POST): the password work of the routes that hash. Mount it before the unit of work. */
export function createPasswordWorkMiddleware(worker: PasswordWorker): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.method !== "POST") return next();
    const path = authPath(c);
    if (!hashesPasswords(path)) return next();
    // Read as text (kept by Hono for better-auth's own read); a body that is not JSON is better-auth's to refuse.
    let body: unknown;
    try {
      body = JSON.parse(await c.req.text());
    } catch {
      body = undefined;
    }
    return worker.run(path, body, next);
  };
}

interface SessionView {
  user: SessionUser;
  session: SessionInfo;
  actor: SessionActor;
}

export interface SessionMiddlewareOptions {
  auth: BetterAuth;
  revocations: Revocations;
  cache: SessionCache;
  memberships: Memberships;
  /** Browser origins allowed to write with a session cookie. */
  trustedOrigins: readonly string[];
  /** Absolute session lifetime in milliseconds. */
  sessionMaxAgeMs: number;
}

const MUTATING = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export function createSessionMiddleware(options: SessionMiddlewareOptions): (c: Context, next: Next) => Promise<void> {
  const { auth, revocations, cache, memberships } = options;
  const trusted = new Set(options.trustedOrigins);
  // What a session looks like to routes, built once per resolved session (the session cache hands
  // out the same object for a credential), not once per request.
  const views = new WeakMap<ResolvedSession, SessionView>();
  const viewOf = (data: ResolvedSession): SessionView => {
    let view = views.get(data);
    if (!view) {
      const { user, session } = data;
      view = {
        user: {
          id: user.id,
          email: user.email,
          name: user.name,
          emailVerified: user.emailVerified,
          role: user.role ?? null,
        },
        session: {
          id: session.id,
          expiresAt: session.expiresAt,
          activeOrganizationId: session.activeOrganizationId ?? null,
          impersonatedBy: session.impersonatedBy ?? null,
        },
        actor: {
          type: "user",
          id: user.id,
          ...(session.impersonatedBy ? { impersonatedBy: session.impersonatedBy } : {}),
        },
      };
      views.set(data, view);
    }
    return view;
  };

  /** Sets the request's user, session, tenant and actor, then runs the rest of the chain. */
  const proceed = (c: Context, next: Next, data: ResolvedSession | null, tenantId: string | null) => {
    const view = data ? viewOf(data) : undefined;
    c.set("user", view?.user ?? null);
    c.set("session", view?.session ?? null);
    c.set("tenant", tenantId ? { id: tenantId } : null);
    return actInRequest(view?.actor, tenantId, next);
  };

  /**
   * A write authenticated by the session cookie must come from a trusted browser origin: the cookie
   * travels with any site's form or fetch, a bearer token does not.
   */
  const checkOrigin = (c: Context) => {
    if (!MUTATING.has(c.req.method) || requestHeader(c, "authorization") !== undefined) return;
    const origin = requestHeader(c, "origin");
    if (origin === undefined || !trusted.has(origin)) throw AuthErrors.ORIGIN_NOT_TRUSTED({ origin: origin ?? null });
  };

  /** The tenant the request asks to act in: X-Tenant-Id, else the session's active organization. */
  const requestedTenant = (c: Context, data: ResolvedSession): string | null => {
    const requested = requestHeader(c, "x-tenant-id");
    if (requested === undefined) return data.session.activeOrganizationId ?? null;
    if (!tenantHeader.safeParse(requested).success) throw AuthErrors.TENANT_HEADER_INVALID({ header: "X-Tenant-Id" });
    return requested;
  };

  const notAMember = (tenantId: string) => AuthErrors.NOT_A_MEMBER({ tenantId });

  return (c, next) => {
    // The hot path — a credential answered from the session cache, acting where membership is
    // known — stays synchronous: no promise of its own (each costs the AsyncLocalStorage hooks on Node 20).
    const remembered = cache.lookup(requestHeader(c, "authorization"), requestHeader(c, "cookie"));
    if (remembered) {
      const tenant = requestedTenant(c, remembered);
      const member = tenant === null ? true : memberships.cached(remembered.user.id, tenant);
      if (member === false) throw notAMember(tenant!);
      if (member === true) {
        checkOrigin(c);
        return proceed(c, next, remembered, tenant);
      }
    }
    return (async () => {
      const { data, headers } = remembered
        ? { data: remembered, headers: undefined }
        : await resolveSession(auth, c.req.raw.headers, revocations, cache, options.sessionMaxAgeMs);
      let tenant: string | null = null;
      if (data) {
        checkOrigin(c);
        tenant = requestedTenant(c, data);
        if (tenant !== null && !(await memberships.isMember(data.user.id, tenant))) throw notAMember(tenant);
      }
      await proceed(c, next, data, tenant);
      for (const cookie of headers?.getSetCookie() ?? []) c.res.headers.append("set-cookie", cookie);
    })();
  };
}
