/**
 * An in-process cache of resolved sessions, in front of better-auth's getSession. With the cookie
 * cache on, getSession makes no query, yet its endpoint machinery costs about a millisecond of CPU
 * per call; this answers a credential seen recently from memory. It is safe because:
 * - the key is the request's credential — its Authorization header and its session-token cookie
 *   (signed by better-auth; the session it names is what any other cookie, such as the signed
 *   cookie-cache copy, can only repeat) — so only a credential better-auth already accepted can hit.
 *   A Cookie header naming the session token twice is ambiguous and never answered from here. The
 *   whole Cookie header was the key before: hashing its ~1.2 KB for the map cost ~3 µs a request;
 * - an entry lives at most `ttlMs` and never past the session's expiry;
 * - a user whose sessions were revoked (sign-out, ban, reset — on any instance, via the revocation
 *   feed) is never answered from it until the revocation window has passed, and one whose sessions
 *   changed (active tenant, impersonation) is dropped from it.
 */
import { absoluteEnd, type ResolvedSession } from "./sessions.js";
import type { Revocations } from "./revocations.js";

interface Entry {
  data: ResolvedSession;
  until: number;
}

/**
 * The value of cookie `name` in a Cookie header; undefined when absent, or present twice.
 */
export function cookieValue(header: string, name: string): string | undefined {
  const needle = `${name}=`;
  let at = header.startsWith(needle) ? 0 : header.indexOf(`; ${needle}`);
  if (at < 0) return undefined;
  if (at > 0) at += 2;
  const start = at + needle.length;
  if (header.indexOf(needle, start) >= 0) return undefined;
  const end = header.indexOf(";", start);
  return header.slice(start, end < 0 ? undefined : end);
}

/** Where the credential headers come from: a Headers object, or the request's parsed headers. */
export interface HeaderSource {
  get(name: string): string | null | undefined;
}

export function createSessionCache(
  revocations: Revocations,
  options: { sessionCookie: string; ttlMs?: number; maxEntries?: number; sessionMaxAgeMs?: number },
) {
  const ttlMs = options.ttlMs ?? 30_000;
  const maxEntries = options.maxEntries ?? 50_000;
  const entries = new Map<string, Entry>();

  const keyOf = (authorization: string | null | undefined, cookie: string | null | undefined): string | undefined => {
    const token = cookie ? cookieValue(cookie, options.sessionCookie) : undefined;
    // The token alone when there is no Authorization header (the cookie case, and the hot one: a
    // string built per request costs a copy before the map can hash it). Header values never hold a
    // newline, so a token cannot collide with a key that carries an Authorization header.
    if (!authorization) return token;
    return `${authorization}\n${token ?? ""}`;
  };

  /** The session remembered for these credential headers, if any is still good. */
  const lookup = (
    authorization: string | null | undefined,
    cookie: string | null | undefined,
  ): ResolvedSession | undefined => {
    const key = keyOf(authorization, cookie);
    if (!key) return undefined;
    const entry = entries.get(key);
    if (!entry) return undefined;
    if (entry.until <= Date.now() || revocations.mustConfirm(entry.data.user.id)) {
      entries.delete(key);
      return undefined;
    }
    return entry.data;
  };

  // A user whose sessions changed (on any instance) is read afresh on their next request.
  revocations.subscribe((event) => {
    if (event.userId === "*") return entries.clear();
    for (const [key, entry] of entries) if (entry.data.user.id === event.userId) entries.delete(key);
  });

  return {
    /** The remembered session for a request's headers. */
    get: (headers: HeaderSource): ResolvedSession | undefined =>
      lookup(headers.get("authorization"), headers.get("cookie")),
    /** The same, from the two header values (the request middleware's hot path: no object per call). */
    lookup,
    set(headers: HeaderSource, data: ResolvedSession): void {
      const key = keyOf(headers.get("authorization"), headers.get("cookie"));
      if (!key) return;
      // Only while other instances' session events arrive: an answer kept without them could
      // outlive a sign-out elsewhere. The feed starts on first use.
      if (!revocations.live) {
        revocations.listen().catch(() => undefined);
        return;
      }
      if (entries.size >= maxEntries) entries.delete(entries.keys().next().value!);
      const end = Math.min(
        new Date(data.session.expiresAt).getTime(),
        absoluteEnd(data, options.sessionMaxAgeMs ?? Infinity),
      );
      entries.set(key, { data, until: Math.min(Date.now() + ttlMs, end) });
    },
  };
}

export type SessionCache = ReturnType<typeof createSessionCache>;
