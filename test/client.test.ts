/**
 * sv-sdk/client against a served instance, as a frontend would use it: better-auth's client for
 * /api/auth (sign-up, sign-in, organization), the Hono RPC client for /api/v1 with types from the
 * route definitions.
 */
import { randomUUID } from "node:crypto";
import { serve } from "@hono/node-server";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { createApp } from "../src/app.js";
import { createClient } from "../src/client.js";
import { freePort } from "../src/db/embedded.js";
import { createSdk, type Sdk } from "../src/index.js";
import { cheapHashingTestSdkOptions } from "../src/testing.js";
import { createIsolatedDatabase, type IsolatedDatabase } from "../src/testing/database.js";

let database: IsolatedDatabase;
let sdk: Sdk;
let server: ReturnType<typeof serve>;
let baseUrl: string;

beforeAll(async () => {
  database = await createIsolatedDatabase(inject("svTestDatabase"));
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  sdk = createSdk(cheapHashingTestSdkOptions(database, { auth: { baseUrl } }));
  server = serve({ fetch: createApp(sdk, { logRequests: false }).fetch, port, hostname: "127.0.0.1" });
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await sdk.close();
  await database.drop();
});

it("signs up and in with the auth client, then calls typed /api/v1 routes with the bearer token", async () => {
  let token = "";
  const client = createClient(baseUrl, {
    headers: () => ({ origin: baseUrl, ...(token ? { authorization: `Bearer ${token}` } : {}) }),
  });
  const email = `client-${randomUUID()}@example.test`;
  const password = "correct horse battery staple";

  const signUp = await client.auth.signUp.email({ email, password, name: "Client" }, { headers: { origin: baseUrl } });
  expect(signUp.error).toBeNull();
  const signIn = await client.auth.signIn.email(
    { email, password },
    { headers: { origin: baseUrl }, onSuccess: (ctx) => void (token = ctx.response.headers.get("set-auth-token") ?? "") },
  );
  expect(signIn.error).toBeNull();
  expect(token).not.toBe("");

  const me = await client.api.api.v1.me.$get();
  expect(me.status).toBe(200);
  const body = await me.json();
  expect(body.user.email).toBe(email);

  const check = await client.api.api.v1.permissions.check.$post({ json: { permissions: ["permissions:read:self", "roles:write"] } });
  expect(check.status).toBe(200);
  const result = await check.json();
  expect(result.results).toEqual({ "permissions:read:self": true, "roles:write": false });

  token = "";
  expect((await client.api.api.v1.me.$get()).status).toBe(401);
});
