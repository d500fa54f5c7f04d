/**
 * The Hono RPC client of `/api/v1`, typed from the route definitions. Its declaration (the `.d.ts`
 * tsc emits for this file) spells the routes' request and response types out in full, so a client's
 * type-check reads that file instead of inferring them again from the whole server (the app, zod,
 * drizzle, better-auth): the import of `App` below is a type import and leaves no trace in it.
 */
import { hc, type ClientRequestOptions } from "hono/client";
import type { App } from "../app.js";

export const createApiClient = (baseUrl: string, options?: ClientRequestOptions) => hc<App>(baseUrl, options);

/** The typed `/api/v1` client: `api.api.v1.me.$get()`, `api.api.v1.permissions.check.$post({ json })` … */
export type Api = ReturnType<typeof createApiClient>;
