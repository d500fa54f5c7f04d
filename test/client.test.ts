/**
 * sv-sdk/client against a served instance on 127.0.0.1, the way it is used: from Node with an origin
 * and a cookie jar, from Node in bearer mode, and as a browser uses it (every request says
 * `credentials: "include"`, asserted on the requests a fetch spy sees, then in Chromium on a page
 * served from another port). And its import loads no server code, checked in a fresh process.
 */
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { fileURLToPath, pathToFileURL } from "node:url";
import { serve } from "@hono/node-server";
import { build } from "esbuild";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createApp } from "../src/app.js";
import { createClient, type ClientOptions } from "../src/client.js";
import { freePort } from "../src/db/embedded.js";
import { createSdk, type Sdk } from "../src/index.js";
import { cheapHashingTestSdkOptions } from "../src/testing.js";
import { createIsolatedDatabase, type IsolatedDatabase } from "../src/testing/database.js";
import { modulesLoadedBy, SERVER_CODE } from "./client-imports.js";

/** The frontend's origin, as the server's TRUSTED_ORIGINS names it. */
const FRONTEND = "https://app.example.test";
const PASSWORD = "correct horse battery staple";

let database: IsolatedDatabase;
let sdk: Sdk;
let server: ReturnType<typeof serve>;
let baseUrl: string;
/** A page's origin in the browser test: the same host, another port, as a dev server would be. */
let pageOrigin: string;

beforeAll(async () => {
  database = await createIsolatedDatabase(inject("svTestDatabase"));
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  pageOrigin = `http://127.0.0.1:${await freePort()}`;
  // As `npm start` configures it: its own public origin and TRUSTED_ORIGINS.
  sdk = createSdk(
    cheapHashingTestSdkOptions(database, { auth: { baseUrl, trustedOrigins: [baseUrl, FRONTEND, pageOrigin] } }),
  );
  server = serve({ fetch: createApp(sdk, { logRequests: false }).fetch, port, hostname: "127.0.0.1" });
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await sdk.close();
  await database.drop();
});

interface Sent {
  url: string;
  method: string;
  credentials: RequestInit["credentials"];
  headers: Headers;
  status: number;
  responseHeaders: Headers;
}

/** A fetch that records what each request was sent with, then sends it. */
function spyFetch(): { fetch: typeof fetch; sent: Sent[] } {
  const sent: Sent[] = [];
  return {
    sent,
    fetch: async (input, init) => {
      const response = await fetch(input, init);
      sent.push({
        url: input instanceof Request ? input.url : input.toString(),
        method: init?.method ?? "GET",
        credentials: init?.credentials,
        headers: new Headers(init?.headers),
        status: response.status,
        responseHeaders: response.headers,
      });
      return response;
    },
  };
}

async function signedUp(options: ClientOptions = {}): Promise<string> {
  const email = `client-${randomUUID()}@example.test`;
  const { error } = await createClient(baseUrl, options).auth.signUp.email({
    email,
    password: PASSWORD,
    name: "Client",
  });
  expect(error).toBeNull();
  return email;
}

describe("from Node", () => {
  it("signs in with an origin and a cookie jar, then calls /api/v1 with the session cookie", async () => {
    const spy = spyFetch();
    const client = createClient(baseUrl, { origin: FRONTEND, cookies: true, fetch: spy.fetch });
    const email = await signedUp({ origin: FRONTEND });

    const signIn = await client.auth.signIn.email({ email, password: PASSWORD });
    expect(signIn.error).toBeNull();
    expect(client.cookies?.cookieHeader(new URL(baseUrl))).toMatch(/(^|; )sv\.session_token=/);

    const me = await client.api.api.v1.me.$get();
    expect(me.status).toBe(200);
    expect((await me.json()).user.email).toBe(email);
    const sentMe = spy.sent.at(-1)!;
    expect(sentMe.headers.get("cookie")).toMatch(/sv\.session_token=/);
    expect(sentMe.headers.get("authorization")).toBeNull();
    expect(sentMe.headers.get("origin")).toBe(FRONTEND);
    // The answer a browser on FRONTEND would need to read it: CORS for that origin, with credentials.
    expect(sentMe.responseHeaders.get("access-control-allow-origin")).toBe(FRONTEND);
    expect(sentMe.responseHeaders.get("access-control-allow-credentials")).toBe("true");

    // A write with the cookie passes the origin check because the origin is a trusted one.
    const check = await client.api.api.v1.permissions.check.$post({
      json: { permissions: ["permissions:read:self", "roles:write"] },
    });
    expect(check.status).toBe(200);
    expect((await check.json()).results).toEqual({ "permissions:read:self": true, "roles:write": false });

    const session = await client.auth.getSession();
    expect(session.data?.user.email).toBe(email);

    const signOut = await client.auth.signOut();
    expect(signOut.error).toBeNull();
    expect(client.cookies?.cookieHeader(new URL(baseUrl)) ?? "").not.toMatch(/sv\.session_token=/);
    expect((await client.api.api.v1.me.$get()).status).toBe(401);
  });

  it("works with no options but a cookie jar: the origin sent is the API's own, which the server trusts", async () => {
    const email = await signedUp();
    const spy = spyFetch();
    const client = createClient(baseUrl, { cookies: true, fetch: spy.fetch });
    expect((await client.auth.signIn.email({ email, password: PASSWORD })).error).toBeNull();
    expect((await client.api.api.v1.permissions.check.$post({ json: { permissions: ["roles:write"] } })).status).toBe(
      200,
    );
    expect((await client.auth.signOut()).error).toBeNull();
    expect(new Set(spy.sent.map((s) => s.headers.get("origin")))).toEqual(new Set([baseUrl]));
  });

  it("is refused with an origin the server does not trust, and without any origin once it holds a cookie", async () => {
    const email = await signedUp();
    const elsewhere = createClient(baseUrl, { origin: "https://elsewhere.example.test", cookies: true });
    const refused = await elsewhere.auth.signIn.email({ email, password: PASSWORD });
    expect(refused.error?.status).toBe(403);
    expect(refused.error?.code).toBe("INVALID_ORIGIN");

    // What the origin option is for: the same calls with the session cookie and no Origin at all.
    const client = createClient(baseUrl, { cookies: true });
    expect((await client.auth.signIn.email({ email, password: PASSWORD })).error).toBeNull();
    const cookie = client.cookies!.cookieHeader(new URL(baseUrl))!;
    const write = await fetch(`${baseUrl}/api/v1/permissions/check`, {
      method: "POST",
      headers: { cookie, "content-type": "application/json" },
      body: JSON.stringify({ permissions: ["roles:write"] }),
    });
    expect(write.status).toBe(403);
    expect(((await write.json()) as { code: string }).code).toBe("ORIGIN_NOT_TRUSTED");
    const signOut = await fetch(`${baseUrl}/api/auth/sign-out`, { method: "POST", headers: { cookie } });
    expect(signOut.status).toBe(403);
    expect(((await signOut.json()) as { code: string }).code).toBe("MISSING_OR_NULL_ORIGIN");
  });

  it("in bearer mode keeps the set-auth-token of sign-in, sends it as Authorization, and forgets it on sign-out", async () => {
    const email = await signedUp();
    const spy = spyFetch();
    const client = createClient(baseUrl, { bearer: true, fetch: spy.fetch });

    expect((await client.auth.signIn.email({ email, password: PASSWORD })).error).toBeNull();
    const token = client.bearer?.get();
    expect(token).toBeTruthy();
    expect(spy.sent.at(-1)!.responseHeaders.get("set-auth-token")).toBe(token);

    const me = await client.api.api.v1.me.$get();
    expect(me.status).toBe(200);
    expect((await me.json()).user.email).toBe(email);
    const sentMe = spy.sent.at(-1)!;
    expect(sentMe.headers.get("authorization")).toBe(`Bearer ${token}`);
    expect(sentMe.headers.get("cookie")).toBeNull();

    // A bearer token is not sent by other sites' pages, so writes need no origin.
    const check = await client.api.api.v1.permissions.check.$post({ json: { permissions: ["permissions:read:self"] } });
    expect(check.status).toBe(200);

    expect((await client.auth.signOut()).error).toBeNull();
    expect(client.bearer?.get()).toBeNull();
    expect((await client.api.api.v1.me.$get()).status).toBe(401);
    // The token itself no longer opens anything.
    const replay = await fetch(`${baseUrl}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(replay.status).toBe(401);
  });
});

describe("as a browser uses it", () => {
  it("says credentials: include on every request, of both clients", async () => {
    const email = await signedUp();
    const spy = spyFetch();
    const client = createClient(baseUrl, { fetch: spy.fetch });
    await client.auth.signIn.email({ email, password: PASSWORD });
    await client.auth.getSession();
    await client.api.api.v1.me.$get();
    await client.api.api.v1.permissions.check.$post({ json: { permissions: ["roles:write"] } });
    expect(spy.sent.map((s) => new URL(s.url).pathname)).toEqual([
      "/api/auth/sign-in/email",
      "/api/auth/get-session",
      "/api/v1/me",
      "/api/v1/permissions/check",
    ]);
    for (const request of spy.sent) expect(request.credentials, request.url).toBe("include");
  });

  it("sends the credentials mode asked for, to both clients", async () => {
    const spy = spyFetch();
    const client = createClient(baseUrl, { fetch: spy.fetch, credentials: "same-origin" });
    await client.auth.getSession();
    await client.api.api.v1.me.$get();
    expect(spy.sent.map((s) => s.credentials)).toEqual(["same-origin", "same-origin"]);
  });

  it("sends the headers option on every request, the request's own headers winning", async () => {
    const spy = spyFetch();
    const client = createClient(baseUrl, {
      fetch: spy.fetch,
      headers: () => ({ "x-request-id": "from-options", "x-tenant-id": "t" }),
    });
    await client.auth.getSession();
    await client.api.api.v1.me.$get(undefined, { headers: { "x-request-id": "from-call" } });
    expect(spy.sent.map((s) => [s.headers.get("x-tenant-id"), s.headers.get("x-request-id")])).toEqual([
      ["t", "from-options"],
      ["t", "from-call"],
    ]);
  });
});

it("keeps the path prefix of its base URL, for both clients", async () => {
  const urls: string[] = [];
  const client = createClient("https://example.test/backend/", {
    fetch: async (input) => {
      urls.push(input.toString());
      return Response.json(null);
    },
  });
  await client.auth.getSession();
  await client.api.api.v1.me.$get();
  expect(urls).toEqual(["https://example.test/backend/api/auth/get-session", "https://example.test/backend/api/v1/me"]);
});

const CHROMIUM = "/usr/bin/chromium";

describe("in Chromium, on a page of another origin", () => {
  let page: Server | undefined;
  afterAll(() => new Promise<void>((resolve) => (page ? page.close(() => resolve()) : resolve())));

  it("signs in and calls /api/v1 with the session cookie; without credentials the same call is 401", async () => {
    // Fails, never skips, without the browser (test/browser.test.ts drives the same one).
    expect(existsSync(CHROMIUM), `${CHROMIUM}: apt-get install chromium`).toBe(true);
    const email = await signedUp();
    // The client as a page loads it: one browser script, hono included.
    const bundle = await build({
      entryPoints: [fileURLToPath(new URL("../src/client.ts", import.meta.url))],
      bundle: true,
      write: false,
      format: "iife",
      globalName: "svClient",
      platform: "browser",
      define: { "process.env.NODE_ENV": '"production"' },
      logLevel: "silent",
    });
    const script = bundle.outputFiles[0]!.text;
    page = createServer((request, response) => {
      if (request.url === "/client.js") response.writeHead(200, { "content-type": "text/javascript" }).end(script);
      else
        response
          .writeHead(200, { "content-type": "text/html" })
          .end('<!doctype html><script src="/client.js"></script>');
    });
    await new Promise<void>((resolve) => page!.listen(Number(new URL(pageOrigin).port), "127.0.0.1", resolve));

    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu"],
    });
    try {
      const tab = await browser.newPage();
      await tab.goto(pageOrigin);
      // Page code as text: this file is compiled without the DOM's types.
      const result = await tab.evaluate(`(async () => {
        const client = svClient.createClient(${JSON.stringify(baseUrl)});
        const signIn = await client.auth.signIn.email({ email: ${JSON.stringify(email)}, password: ${JSON.stringify(PASSWORD)} });
        const me = await client.api.api.v1.me.$get();
        const check = await client.api.api.v1.permissions.check.$post({ json: { permissions: ["roles:write"] } });
        const omitted = await svClient.createClient(${JSON.stringify(baseUrl)}, { credentials: "omit" }).api.api.v1.me.$get();
        return { signIn: signIn.error, me: me.status, email: (await me.json()).user.email, check: check.status, omitted: omitted.status };
      })()`);
      expect(result).toEqual({ signIn: null, me: 200, email, check: 200, omitted: 401 });
    } finally {
      await browser.close();
    }
  }, 90_000);
});

it("imports without loading server code, a database driver or better-auth's server", async () => {
  const client = pathToFileURL(fileURLToPath(new URL("../src/client.ts", import.meta.url))).href;
  const modules = await modulesLoadedBy(
    `const { createClient } = await import(${JSON.stringify(client)}); createClient("http://127.0.0.1:1", { cookies: true });`,
    { cwd: fileURLToPath(new URL("..", import.meta.url)), tsx: true },
  );
  expect(modules.some((url) => url.endsWith("/src/client.ts"))).toBe(true);
  expect(modules.some((url) => url.includes("/node_modules/hono/dist/client/"))).toBe(true);
  expect(modules.filter((url) => SERVER_CODE.test(url))).toEqual([]);
});
