/**
 * The request context for `/api/v1`: `c.get("user")`, `c.get("session")`, `c.get("tenant")`, and the
 * unit of work's actor and tenant. The session comes from better-auth (cookie or bearer token); its
 * refreshed cookies are forwarded (better-auth#1752: a server-side getSession drops them otherwise).
 */
import type { Context, MiddlewareHandler, Next } from "hono";
import { z } from "zod";
import type { Router } from "../../db/router.js";
import { currentStore, runWithContext, updateContext, type Actor } from "../../db/unit-of-work.js";
import type { SessionInfo, SessionUser } from "../../http/context.js";
import { requestHeader } from "../../http/headers.js";
import type { BetterAuth } from "./better-auth.js";
import { AuthErrors } from "./errors.js";
import { DEFAULT_SESSION_MAX_AGE_SECONDS } from "./better-auth.js";
import { transientError } from "../../errors.js";
import type { Revocations } from "./revocations.js";
import type { SessionCache } from "./session-cache.js";
import type { Memberships } from "./memberships.js";

const tenantHeader = z.uuid();

export interface ResolvedSession {
  user: { id: string; email: string; name: string; emailVerified: boolean; role?: string | null; banned?: boolean | null };
  session: { id: string; expiresAt: Date; createdAt?: Date | string; activeOrganizationId?: string | null; impersonatedBy?: string | null };
}

/** When a session ends whatever its use (ASVS 7.3.2): its start plus the absolute lifetime. */
export function absoluteEnd(data: ResolvedSession, maxAgeMs: number): number {
  const created = data.session.createdAt === undefined ? Date.now() : new Date(data.session.createdAt).getTime();
  return created + maxAgeMs;
}

async function getSession(auth: BetterAuth, headers: Headers, fromDatabase: boolean) {
  try {
    const result = await auth.api.getSession({
      headers,
      returnHeaders: true,
      query: fromDatabase ? { disableCookieCache: true } : undefined,
    });
    return { data: (result.response as ResolvedSession | null) ?? null, headers: result.headers };
  } catch (error) {
    // A database that cannot answer is a 503, never "signed out": a 401 makes frontends drop the user.
    const transient = transientError(error);
    if (transient) throw transient;
    // A malformed or forged cookie is simply no session.
    return { data: null };
  }
}

/**
 * The request's session: from the signed cookie cache when it is fresh (no query), confirmed against
 * the database when this user's sessions were revoked within one cookie-cache age.
 */
export async function resolveSession(
  auth: BetterAuth,
  headers: Headers,
  revocations?: Revocations,
  cache?: SessionCache,
  maxAgeMs = DEFAULT_SESSION_MAX_AGE_SECONDS * 1000,
): Promise<{ data: ResolvedSession | null; headers?: Headers }> {
  const remembered = cache?.get(headers);
  if (remembered) return { data: remembered };
  let resolved = await getSession(auth, headers, false);
  if (resolved.data && revocations?.mustConfirm(resolved.data.user.id)) resolved = await getSession(auth, headers, true);
  // better-auth extends a session in use for ever; past its absolute lifetime it is over.
  if (resolved.data && absoluteEnd(resolved.data, maxAgeMs) <= Date.now()) return { data: null };
  // A response that refreshes cookies changes the credential: only a settled one is remembered.
  if (resolved.data && cache && !resolved.headers?.getSetCookie().length) cache.set(headers, resolved.data);
  return resolved;
}

interface SessionView {
  user: SessionUser;
  session: SessionInfo;
  actor: Extract<Actor, { type: "user" }>;
}

export interface SessionMiddlewareOptions {
  auth: BetterAuth;
  router: Router;
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
        user: { id: user.id, email: user.email, name: user.name, emailVerified: user.emailVerified, role: user.role ?? null },
        session: {
          id: session.id,
          expiresAt: session.expiresAt,
          activeOrganizationId: session.activeOrganizationId ?? null,
          impersonatedBy: session.impersonatedBy ?? null,
        },
        actor: { type: "user", id: user.id, ...(session.impersonatedBy ? { impersonatedBy: session.impersonatedBy } : {}) },
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
    const actor = view?.actor;
    // createApp opened this request's context; the session fills it in rather than opening a second
    // scope per request (measured: the nested scope cost a third of an authorized read's throughput).
    if (currentStore()) {
      updateContext({ actor, tenantId });
      return next();
    }
    return runWithContext({ actor, tenantId }, () => next());
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
      const { data, headers } = remembered ? { data: remembered, headers: undefined } : await resolveSession(auth, c.req.raw.headers, revocations, cache, options.sessionMaxAgeMs);
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

/** 401 problem+json unless the request carries a valid session. */
export const requireSession: MiddlewareHandler = async (c, next) => {
  if (!c.get("user")) throw AuthErrors.SESSION_REQUIRED();
  await next();
};
