/**
 * `sv-sdk/client` (published alone, with no server code, as `@sv-sdk/client`): typed clients of
 * this API for frontends and for other processes. `api` is a Hono RPC client for `/api/v1` (request
 * and response types from the route definitions); `auth` is better-auth's client with the plugins the
 * server runs (organization, admin, two-factor, jwt), for `/api/auth`. Both send through one fetch
 * (`client/session-fetch.ts`) that carries the session wherever the client runs: the browser's
 * cookie (`credentials: "include"`, so an API on another origin gets it), a cookie jar and an
 * `Origin` outside browsers, or a bearer token.
 *
 * Nothing here imports server code at run time; the types come from prebuilt declarations
 * (`client/api.ts`, `client/auth-endpoints.ts`), so checking a client does not type-check the server.
 */
import { createAuthClient } from "better-auth/client";
import { createApiClient, type Api } from "./client/api.js";
import type { AuthEndpoints } from "./client/auth-endpoints.js";
import { authClientPlugins } from "./client/auth-plugins.js";
import type { AuthFetch } from "./client/auth-types.js";
import { createCookieJar, type CookieJar } from "./client/cookie-jar.js";
import { createTokenStore, sessionFetch, type HeadersOption, type TokenStore } from "./client/session-fetch.js";

export type { Api } from "./client/api.js";
export type { AuthEndpoints } from "./client/auth-endpoints.js";
export type {
  AuthAtom,
  AuthEndpoint,
  AuthError,
  AuthErrorContext,
  AuthFetch,
  AuthQueryError,
  AuthQueryState,
  AuthRequestOptions,
  AuthResult,
  AuthSuccessContext,
  OptionalAuthEndpoint,
} from "./client/auth-types.js";
export { createCookieJar, type CookieJar } from "./client/cookie-jar.js";
export { createTokenStore, type HeadersOption, type TokenStore } from "./client/session-fetch.js";

/** better-auth's client for `/api/auth`, as declared for this server. */
export type AuthClient = AuthEndpoints & { $fetch: AuthFetch };

export interface ClientOptions {
  /**
   * Whether requests carry cookies: `"include"` (the default) sends the session cookie to an API on
   * another origin too — the server must list the page's origin in `TRUSTED_ORIGINS` (CORS).
   */
  credentials?: "include" | "same-origin" | "omit";
  /**
   * Sent as `Origin` on every request; default: the API's own origin (`baseUrl`'s). Outside a browser
   * nothing else sets it, and the server refuses sign-in (better-auth: 403 MISSING_OR_NULL_ORIGIN) and
   * cookie-authenticated writes without a trusted one. The server always trusts its own `PUBLIC_URL`;
   * give another origin from its `TRUSTED_ORIGINS` when the API is reached at another address.
   * A browser ignores this and sends the page's origin, which must be in `TRUSTED_ORIGINS`.
   */
  origin?: string;
  /**
   * Keep cookies between requests, for clients outside a browser (where fetch keeps none): `true`
   * for an in-memory jar, or a jar of your own (`createCookieJar()`, or one over tough-cookie).
   */
  cookies?: boolean | CookieJar;
  /**
   * Bearer mode: keep the `set-auth-token` header sign-in answers with and send it as
   * `Authorization: Bearer …` on every request; a sign-out forgets it. `true` keeps it in memory;
   * pass a `TokenStore` to read it or to persist it.
   */
  bearer?: boolean | TokenStore;
  /** Headers sent on every request (e.g. `X-Tenant-Id`), fixed or computed per request. */
  headers?: HeadersOption;
  /** The fetch to send with; default the global one. */
  fetch?: typeof fetch;
}

export interface Client {
  /** The Hono RPC client of `/api/v1`: `await client.api.api.v1.me.$get()`. */
  api: Api;
  /** better-auth's client for `/api/auth`: `await client.auth.signIn.email({ email, password })`. */
  auth: AuthClient;
  /** The cookie jar in use (with `cookies`). */
  cookies: CookieJar | undefined;
  /** The bearer token store in use (with `bearer`). */
  bearer: TokenStore | undefined;
}

/**
 * A client of the API at `baseUrl`: its origin (`https://api.example.com`), or with the path prefix a
 * proxy serves it under (`https://example.com/backend`).
 *
 * @example
 * // In a browser, on a page served from a trusted origin:
 * const client = createClient("https://api.example.com");
 * await client.auth.signIn.email({ email, password });
 * const me = await (await client.api.api.v1.me.$get()).json();
 *
 * // Outside a browser: a cookie jar (or `bearer: true`), one client per user.
 * const client = createClient("https://api.example.com", { cookies: true });
 */
export function createClient(baseUrl: string, options: ClientOptions = {}): Client {
  const credentials = options.credentials ?? "include";
  const cookies = options.cookies === true ? createCookieJar() : options.cookies || undefined;
  const bearer = options.bearer === true ? createTokenStore() : options.bearer || undefined;
  // Under any path prefix of baseUrl (better-auth takes a base URL with a path as the whole base).
  const authBase = `${baseUrl.replace(/\/+$/, "")}/api/auth`;
  const fetch = sessionFetch({
    fetch: options.fetch,
    headers: options.headers,
    origin: options.origin ?? new URL(baseUrl).origin,
    cookies,
    token: bearer,
    signOutUrl: `${authBase}/sign-out`,
  });
  // better-auth's own types are assigned to the declared ones here: if they drift apart (a better-auth
  // upgrade, another plugin), this line stops compiling until auth-endpoints.ts is generated again.
  const auth: AuthClient = createAuthClient({
    baseURL: authBase,
    fetchOptions: { customFetchImpl: fetch, credentials },
    plugins: authClientPlugins(),
  });
  return { api: createApiClient(baseUrl, { fetch, init: { credentials } }), auth, cookies, bearer };
}
