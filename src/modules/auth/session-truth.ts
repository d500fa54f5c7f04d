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
import type { Revocations } from "./revocations.js";
import { cookieValue, type SessionCache } from "./session-cache.js";
import { resolveSession } from "./sessions.js";

export interface SessionTruthDependencies {
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

/** Set-Cookie lines that clear every session cookie in the browser. */
function expiredCookies(cookies: SessionTruthDependencies["cookies"], secure: boolean): string[] {
  return cookies.all.map(
    (name) =>
      `${name}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax${secure || name.startsWith("__Secure-") ? "; Secure" : ""}`,
  );
}

/**
 * The request as better-auth may see it, and the Set-Cookie lines the response must carry (the
 * session cookies cleared, when the session is gone).
 */
export async function admit(
  deps: SessionTruthDependencies,
  request: Request,
): Promise<{ request: Request; clearCookies: string[] }> {
  const { auth, revocations, cache, cookies, secure, sessionMaxAgeMs } = deps;
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
    clearCookies: stale ? expiredCookies(cookies, secure) : [],
  };
}

/**
 * Bearer tokens are accepted signed only (a token read from the sessions table is useless), and
 * better-auth hands the signed form out in the `set-auth-token` header while the answer's body
 * carries the bare session token. The body's `token` becomes the signed one too, so the token a
 * client reads from the sign-in answer is one it can use.
 */
async function withSignedToken(response: Response): Promise<Response> {
  const signed = response.headers.get("set-auth-token");
  if (!signed || !response.headers.get("content-type")?.includes("application/json")) return response;
  const body = (await response
    .clone()
    .json()
    .catch(() => undefined)) as { token?: unknown } | undefined;
  if (!body || typeof body.token !== "string" || body.token === signed) return response;
  const headers = new Headers(response.headers);
  headers.delete("content-length");
  return new Response(JSON.stringify({ ...body, token: signed }), { status: response.status, headers });
}

/**
 * `GET /api/auth/get-session` (no options), answered from the session cache when it holds a settled
 * answer for these credentials: the call every better-auth client makes on page load. The cache holds
 * only what better-auth's own getSession returned without refreshing a cookie (a settled credential),
 * drops a user's entries on any session event from any instance, and never outlives the session or
 * its absolute lifetime — so the answer is the one better-auth would give, without decoding and
 * verifying its signed cookie again. Anything else goes to better-auth.
 */
function rememberedSession(deps: SessionTruthDependencies, request: Request): Response | undefined {
  if (request.method !== "GET") return undefined;
  const url = new URL(request.url);
  if (!url.pathname.endsWith("/get-session") || url.search !== "") return undefined;
  const remembered = deps.cache.get(request.headers);
  if (!remembered) return undefined;
  return new Response(JSON.stringify(remembered), { status: 200, headers: { "content-type": "application/json" } });
}

/** better-auth's fetch handler behind the one session truth. */
export async function handleAuthRequest(deps: SessionTruthDependencies, request: Request): Promise<Response> {
  const remembered = rememberedSession(deps, request);
  if (remembered) return remembered;
  const admitted = await admit(deps, request);
  const response = await withSignedToken(await deps.auth.handler(admitted.request));
  if (admitted.clearCookies.length === 0) return response;
  const cleared = new Response(response.body, response);
  // A cookie the response sets itself (a sign-in's new session) is not cleared after it.
  const set = new Set(response.headers.getSetCookie().map((line) => line.slice(0, line.indexOf("="))));
  for (const line of admitted.clearCookies)
    if (!set.has(line.slice(0, line.indexOf("=")))) cleared.headers.append("set-cookie", line);
  return cleared;
}
