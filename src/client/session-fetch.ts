/**
 * The one fetch both clients send through (the Hono RPC client and better-auth's): what makes a
 * session work where the client runs is applied here, once, to every request and response.
 *
 * - In a browser the browser keeps the session cookie; the request only has to say
 *   `credentials: "include"` for it to travel to an API on another origin (the callers set it).
 * - Elsewhere (Node, Deno, Bun, a test) nothing keeps cookies and nothing sets `Origin`: better-auth
 *   refuses sign-in without a trusted `Origin` (Node's fetch sends `Sec-Fetch-Mode`, so better-auth
 *   checks it as it would a browser's), and `/api/v1` refuses a write with a session cookie without
 *   one. `origin` is sent on every request (a browser drops it: `Origin` is a header scripts cannot
 *   set); `cookies` keeps `Set-Cookie` and sends it back.
 * - Bearer mode keeps the `set-auth-token` header of sign-in and sends `Authorization: Bearer …`.
 */
import type { CookieJar } from "./cookie-jar.js";

/** Headers sent on every request: fixed, or computed per request. */
export type HeadersOption = Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);

/** Where bearer mode keeps the session token (in memory by default; bring your own to persist it). */
export interface TokenStore {
  get(): string | null | undefined;
  set(token: string | null): void;
}

/**
 * An in-memory token store for bearer mode.
 *
 * @example
 * const token = createTokenStore();
 * const client = createClient("https://api.example.com", { bearer: token });
 * await client.auth.signIn.email({ email, password });
 * token.get(); // the session token, also sent as `Authorization: Bearer …` on every request
 */
export function createTokenStore(initial: string | null = null): TokenStore {
  let token = initial;
  return {
    get: () => token,
    set: (value) => void (token = value),
  };
}

export interface SessionFetchOptions {
  /** The fetch to send with (default: the global one, looked up per request). */
  fetch?: typeof fetch;
  headers?: HeadersOption;
  /** Sent as `Origin` on every request (a browser ignores it and sends its own). */
  origin?: string;
  cookies?: CookieJar;
  token?: TokenStore;
  /** better-auth's sign-out URL: a successful sign-out forgets the bearer token. */
  signOutUrl: string;
}

function urlOf(input: string | URL | Request): URL {
  return new URL(input instanceof Request ? input.url : input.toString());
}

export function sessionFetch(options: SessionFetchOptions): typeof fetch {
  const signOutPath = new URL(options.signOutUrl).pathname;
  return async (input, init) => {
    const url = urlOf(input);
    const headers = new Headers(typeof options.headers === "function" ? await options.headers() : options.headers);
    // The request's own headers win over the defaults.
    new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined)).forEach((value, name) => {
      headers.set(name, value);
    });
    if (options.origin !== undefined) headers.set("origin", options.origin);
    const cookie = options.cookies?.cookieHeader(url);
    if (cookie) headers.set("cookie", headers.has("cookie") ? `${headers.get("cookie")}; ${cookie}` : cookie);
    const token = options.token?.get();
    if (token && !headers.has("authorization")) headers.set("authorization", `Bearer ${token}`);

    const response = await (options.fetch ?? fetch)(input, { ...init, headers });

    // Browsers never show Set-Cookie to scripts; there the jar is not used.
    if (options.cookies) options.cookies.store(url, response.headers.getSetCookie?.() ?? []);
    if (options.token) {
      const issued = response.headers.get("set-auth-token");
      if (issued) options.token.set(issued);
      else if (response.ok && url.pathname === signOutPath) options.token.set(null);
    }
    return response;
  };
}
