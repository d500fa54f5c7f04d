/**
 * `sv-sdk/client`: typed clients for frontends. `api` is a Hono RPC client for `/api/v1` (its request
 * and response types come from the route definitions); `auth` is better-auth's client with the
 * plugins this server runs (organization, admin, two-factor, jwt), for `/api/auth`.
 */
import { createAuthClient } from "better-auth/client";
import { adminClient, jwtClient, organizationClient, twoFactorClient } from "better-auth/client/plugins";
import { hc, type ClientRequestOptions } from "hono/client";
import type { App } from "./app.js";

export interface ClientOptions {
  /** Extra fetch options: `credentials: "include"` for cookie sessions across origins, headers … */
  fetch?: typeof fetch;
  headers?: ClientRequestOptions["headers"];
}

/**
 * @example
 * const client = createClient("https://api.example.com");
 * await client.auth.signIn.email({ email, password });
 * const me = await (await client.api.api.v1.me.$get()).json();
 */
export function createClient(baseUrl: string, options: ClientOptions = {}) {
  return {
    api: hc<App>(baseUrl, { fetch: options.fetch, headers: options.headers }),
    auth: createAuthClient({
      baseURL: baseUrl,
      basePath: "/api/auth",
      fetchOptions: options.fetch ? { customFetchImpl: options.fetch } : undefined,
      plugins: [organizationClient(), adminClient(), twoFactorClient(), jwtClient()],
    }),
  };
}

export type Client = ReturnType<typeof createClient>;
export type { App };
