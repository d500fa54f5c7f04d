/**
 * How a request's credential becomes a session, for every route (`/api/v1` and better-auth's own):
 * the in-process cache first, then better-auth's signed cookie cache, confirmed against the database
 * while the user's sessions were recently revoked on any instance, and never past the session's
 * absolute lifetime.
 */
import { currentStore, runWithContext, updateContext, type Actor } from "../../db/unit-of-work.js";
import { transientError } from "../../errors.js";
import { DEFAULT_SESSION_MAX_AGE_SECONDS, type BetterAuth } from "./better-auth.js";
import type { Revocations } from "./revocations.js";

export interface ResolvedSession {
  user: {
    id: string;
    email: string;
    name: string;
    emailVerified: boolean;
    role?: string | null;
    banned?: boolean | null;
  };
  session: {
    id: string;
    expiresAt: Date;
    createdAt?: Date | string;
    activeOrganizationId?: string | null;
    impersonatedBy?: string | null;
  };
}

/** The actor a session's requests act as. */
export type SessionActor = Extract<Actor, { type: "user" }>;

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

/** Sessions resolved before, by request credentials (session-cache.ts). */
export interface RememberedSessions {
  get(headers: Headers): ResolvedSession | undefined;
  set(headers: Headers, session: ResolvedSession): void;
}

/**
 * The request's session: from the signed cookie cache when it is fresh (no query), confirmed against
 * the database when this user's sessions were revoked within one cookie-cache age.
 */
export async function resolveSession(
  auth: BetterAuth,
  headers: Headers,
  revocations?: Revocations,
  cache?: RememberedSessions,
  maxAgeMs = DEFAULT_SESSION_MAX_AGE_SECONDS * 1000,
): Promise<{ data: ResolvedSession | null; headers?: Headers }> {
  const remembered = cache?.get(headers);
  if (remembered) return { data: remembered };
  let resolved = await getSession(auth, headers, false);
  if (resolved.data && revocations?.mustConfirm(resolved.data.user.id))
    resolved = await getSession(auth, headers, true);
  // better-auth extends a session in use for ever; past its absolute lifetime it is over.
  if (resolved.data && absoluteEnd(resolved.data, maxAgeMs) <= Date.now()) return { data: null };
  // A response that refreshes cookies changes the credential: only a settled one is remembered.
  if (resolved.data && cache && !resolved.headers?.getSetCookie().length) cache.set(headers, resolved.data);
  return resolved;
}

/**
 * Runs the rest of a request as `actor` in `tenantId`. The app opened the request's context; the
 * session fills it in rather than opening a second scope per request (measured: the nested scope
 * cost a third of an authorized read's throughput).
 */
export function actInRequest<T>(actor: Actor | undefined, tenantId: string | null, next: () => T): T {
  if (currentStore()) {
    updateContext({ actor, tenantId });
    return next();
  }
  return runWithContext({ actor, tenantId }, () => next());
}
