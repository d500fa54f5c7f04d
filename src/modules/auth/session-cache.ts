/**
 * An in-process cache of resolved sessions, in front of better-auth's getSession. With the cookie
 * cache on, getSession makes no query, yet its endpoint machinery costs about a millisecond of CPU
 * per call; this answers a credential seen recently from memory. It is safe because:
 * - the key is the request's whole credential (Authorization and Cookie headers), so only a
 *   combination better-auth already accepted can hit;
 * - an entry lives at most `ttlMs` and never past the session's expiry;
 * - a user whose sessions were revoked (sign-out, ban, reset — on any instance, via the revocation
 *   feed) is never answered from it until the revocation window has passed.
 */
import type { ResolvedSession } from "./middleware.js";
import type { Revocations } from "./revocations.js";

interface Entry {
  data: ResolvedSession;
  until: number;
}

export function createSessionCache(revocations: Revocations, options: { ttlMs?: number; maxEntries?: number } = {}) {
  const ttlMs = options.ttlMs ?? 30_000;
  const maxEntries = options.maxEntries ?? 50_000;
  const entries = new Map<string, Entry>();

  const keyOf = (headers: Headers): string | undefined => {
    const authorization = headers.get("authorization");
    const cookie = headers.get("cookie");
    if (!authorization && !cookie) return undefined;
    return `${authorization ?? ""}\n${cookie ?? ""}`;
  };

  return {
    get(headers: Headers): ResolvedSession | undefined {
      const key = keyOf(headers);
      if (!key) return undefined;
      const entry = entries.get(key);
      if (!entry) return undefined;
      if (entry.until <= Date.now() || revocations.mustConfirm(entry.data.user.id)) {
        entries.delete(key);
        return undefined;
      }
      return entry.data;
    },
    set(headers: Headers, data: ResolvedSession): void {
      const key = keyOf(headers);
      if (!key) return;
      if (entries.size >= maxEntries) entries.delete(entries.keys().next().value!);
      entries.set(key, { data, until: Math.min(Date.now() + ttlMs, new Date(data.session.expiresAt).getTime()) });
    },
  };
}

export type SessionCache = ReturnType<typeof createSessionCache>;
