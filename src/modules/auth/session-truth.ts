/**
 * One session truth for every route. better-auth's own endpoints (`/api/auth/*`: get-session, token,
 * invite-member, update-user …) answer from the signed cookie-cache copy of a session for its max
 * age, so a session ended on any instance kept working there for minutes while `/api/v1` already
 * refused it. Before a request reaches better-auth, its session is resolved the way `/api/v1`
 * resolves it (the in-process cache, then the cookie cache, confirmed against the database while
 * the user's sessions were recently revoked on any instance):
 * - no session (signed out, revoked, banned, reset): the session cookies are taken off the request,
 *   and the response clears them in the browser;
 * - a session under a recent revocation: only the cookie-cache copy is taken off, so better-auth
 *   reads the session itself from the database.
 * A valid session on the hot path costs no query (the in-process cache answers).
 */
import type { BetterAuth } from "./better-auth.js";
import { resolveSession } from "./middleware.js";
import type { Revocations } from "./revocations.js";
import { cookieValue, type SessionCache } from "./session-cache.js";

export interface SessionTruthOptions {
  auth: BetterAuth;
  revocations: Revocations;
  cache: SessionCache;
  cookies: { token: string; cache: string; all: string[] };
  secure: boolean;
  sessionMaxAgeMs: number;
}

/** The Cookie header without the named cookies. */
function withoutCookies(header: string, names: readonly string[]): string {
  return header
    .split(";")
    .map((part) => part.trim())
    .filter((part) => part && !names.some((name) => part.startsWith(`${name}=`)))
    .join("; ");
}

export function createSessionTruth({ auth, revocations, cache, cookies, secure, sessionMaxAgeMs }: SessionTruthOptions) {
  const expired = cookies.all.map(
    (name) => `${name}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax${secure || name.startsWith("__Secure-") ? "; Secure" : ""}`,
  );
  /**
   * The request as better-auth may see it, and the Set-Cookie lines the response must carry (the
   * session cookies cleared, when the session is gone).
   */
  return async function admit(request: Request): Promise<{ request: Request; clearCookies: string[] }> {
    const header = request.headers.get("cookie") ?? "";
    const bearer = /^bearer /i.test(request.headers.get("authorization") ?? "");
    const carriesSession = bearer || cookieValue(header, cookies.token) !== undefined;
    if (!carriesSession) return { request, clearCookies: [] };
    const resolved = await resolveSession(auth, request.headers, revocations, cache, sessionMaxAgeMs);
    const stale = !resolved.data;
    if (!stale && !revocations.mustConfirm(resolved.data!.user.id)) return { request, clearCookies: [] };
    const headers = new Headers(request.headers);
    const kept = withoutCookies(header, stale ? cookies.all : [cookies.cache]);
    if (kept) headers.set("cookie", kept);
    else headers.delete("cookie");
    // A bearer token of an ended session (past its absolute lifetime, say) goes too.
    if (stale) headers.delete("authorization");
    const body = request.method === "GET" || request.method === "HEAD" ? undefined : await request.arrayBuffer();
    return {
      request: new Request(request.url, { method: request.method, headers, body: body?.byteLength ? body : undefined }),
      clearCookies: stale ? expired : [],
    };
  };
}
