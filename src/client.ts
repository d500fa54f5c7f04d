/**
 * `sv-sdk/client`: typed clients for frontends. `api` is a Hono RPC client for `/api/v1` (its request
 * and response types come from the route definitions); `auth` is better-auth's client with the
 * plugins this server runs (organization, admin, two-factor, jwt), for `/api/auth`.
 *
 * The types come from prebuilt declarations (`client/api.ts`, `client/auth-endpoints.ts`), so
 * checking a client does not type-check the server.
 */
import { createAuthClient } from "better-auth/client";
import type { ClientRequestOptions } from "hono/client";
import { createApiClient, type Api } from "./client/api.js";
import type { AuthEndpoints } from "./client/auth-endpoints.js";
import { authClientPlugins } from "./client/auth-plugins.js";
import type { AuthFetch } from "./client/auth-types.js";

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

/** better-auth's client for `/api/auth`, as declared for this server. */
export type AuthClient = AuthEndpoints & { $fetch: AuthFetch };

export interface ClientOptions {
  fetch?: typeof fetch;
  headers?: ClientRequestOptions["headers"];
}

export interface Client {
  api: Api;
  auth: AuthClient;
}

/**
 * @example
 * const client = createClient("https://api.example.com");
 * await client.auth.signIn.email({ email, password });
 * const me = await (await client.api.api.v1.me.$get()).json();
 */
export function createClient(baseUrl: string, options: ClientOptions = {}): Client {
  // better-auth's own types are assigned to the declared ones here: if they drift apart (a better-auth
  // upgrade, another plugin), this line stops compiling until auth-endpoints.ts is generated again.
  const auth: AuthClient = createAuthClient({
    baseURL: baseUrl,
    basePath: "/api/auth",
    fetchOptions: options.fetch ? { customFetchImpl: options.fetch } : undefined,
    plugins: authClientPlugins(),
  });
  return { api: createApiClient(baseUrl, { fetch: options.fetch, headers: options.headers }), auth };
}
