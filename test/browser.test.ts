/**
 * The pages a developer opens, in a real browser: the app served on 127.0.0.1, Debian's chromium
 * driven by playwright-core. /docs is the Scalar reference: signing up and in through its own
 * try-it-out, then calling the API with the session cookie and with the pasted bearer token, with no
 * request leaving 127.0.0.1; at phone width it does not scroll sideways. /dev/mail shows a
 * verify-email the SDK sent through the development transport, its HTML inside a sandbox where the
 * mail's script does not run.
 *
 * The data must be committed (the server's requests run on their own connections), so the test
 * works in an isolated database, dropped afterwards.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { serve, type ServerType } from "@hono/node-server";
import { chromium, type BrowserContext, type Locator, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createApp } from "../src/app.js";
import { freePort } from "../src/db/embedded.js";
import { createSdk, type Sdk } from "../src/index.js";
import { devMessages } from "../src/modules/email/index.js";
import { createIsolatedDatabase, type IsolatedDatabase } from "../src/testing/database.js";
import { cheapHashingTestSdkOptions } from "./support.js";

const CHROMIUM = "/usr/bin/chromium";
const STEP_TIMEOUT_MS = 15_000;

let database: IsolatedDatabase | undefined;
let sdk: Sdk | undefined;
let server: ServerType | undefined;
let base = "";

beforeAll(async () => {
  database = await createIsolatedDatabase(inject("svTestDatabase"));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  // The page's cookie requests carry this origin: better-auth refuses untrusted ones.
  sdk = createSdk(cheapHashingTestSdkOptions(database, { auth: { baseUrl: base, trustedOrigins: [base] } }));
  const app = createApp(sdk, { logRequests: false });
  await new Promise<void>((resolve) => {
    server = serve({ fetch: app.fetch, port, hostname: "127.0.0.1" }, () => resolve());
  });
});

afterAll(async () => {
  await new Promise<void>((resolve) => {
    if (!server) return resolve();
    server.close(() => resolve());
    if ("closeAllConnections" in server) server.closeAllConnections();
  });
  await sdk?.close();
  await database?.drop();
});

/** Runs `fn` with a page of a fresh headless Chromium profile; the browser always closes. */
async function withPage<T>(fn: (page: Page) => Promise<T>, viewport?: { width: number; height: number }): Promise<T> {
  // Each test fails (never skips) without the browser, saying how to get it.
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} not found. These tests drive Debian's chromium package: install it with ` +
        "`apt-get install chromium` (as root; .ci/run does this on CI).",
    );
  }
  const profile = await mkdtemp(join(tmpdir(), "sv-sdk-chromium-"));
  let context: BrowserContext | undefined;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30_000,
      ...(viewport ? { viewport } : {}),
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
    return await fn(page);
  } finally {
    await context?.close().catch(() => {});
    await rm(profile, { recursive: true, force: true });
  }
}

/**
 * Watches what the page does that it must not: a request to anywhere but the server (a CDN, web
 * fonts, telemetry), a content-security-policy violation, an uncaught error.
 */
async function watchPage(page: Page) {
  const outside: string[] = [];
  const errors: string[] = [];
  page.context().on("request", (request) => {
    const url = new URL(request.url());
    if (
      (url.protocol === "http:" || url.protocol === "https:" || url.protocol === "ws:" || url.protocol === "wss:") &&
      url.origin !== base
    ) {
      outside.push(request.url());
    }
  });
  page.on("pageerror", (error) => errors.push(error.message));
  // Page scripts as text: this file is compiled without the DOM's types.
  await page.addInitScript(
    "window.cspViolations = []; document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));",
  );
  return {
    async expectClean() {
      expect(outside, "requests that left the server's origin").toEqual([]);
      // zod (inside Scalar's bundle) probes once for eval with `Function("")` in a try/catch and, refused,
      // validates without it: the one violation that is expected. The page needs no 'unsafe-eval'.
      const violations = (await page.evaluate("window.cspViolations")) as string[];
      expect(
        violations.filter((v) => v !== "script-src eval"),
        "CSP violations",
      ).toEqual([]);
      expect(errors, "uncaught errors in the page").toEqual([]);
    },
  };
}

/** The page scrolls sideways when the document is wider than the viewport. */
const horizontalOverflow = (page: Page) =>
  page.evaluate("({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth })");

/** Scalar's reference: find an operation with its search, open its try-it-out, send requests. */
function reference(page: Page) {
  const client = page.getByRole("dialog");
  const operation = (title: string) =>
    page
      .locator("section")
      .filter({ has: page.getByRole("heading", { name: title, exact: true }) })
      .first();
  return {
    client,
    /** Searches like a reader (Ctrl+K, type, pick the result), then opens the operation's "Test Request". */
    async tryOut(title: string) {
      await page.keyboard.press("Control+k");
      await page.getByRole("combobox", { name: "Enter search query" }).fill(title);
      await page.getByRole("option").filter({ hasText: title }).first().click();
      await operation(title)
        .getByRole("button", { name: /^Test Request/ })
        .first()
        .click();
      await client.waitFor({ state: "visible" });
    },
    async close() {
      await client.getByRole("button", { name: "Close Client" }).click();
      await client.waitFor({ state: "hidden" });
    },
    /** Replaces the JSON body in the request editor (the client's first code editor). */
    async body(value: unknown) {
      const editor = client.locator(".cm-content").first();
      await editor.click();
      await page.keyboard.press("Control+A");
      await page.keyboard.press("Delete");
      await page.keyboard.insertText(JSON.stringify(value));
    },
    /** Sends, and waits for the response with `status` to show; returns the response body as shown. */
    async send(status: string): Promise<string> {
      await client.getByRole("button", { name: /^Send/ }).first().click();
      await client.getByText(status, { exact: true }).waitFor({ state: "visible" });
      // The response body is the client's last code editor once a response has arrived.
      const shown: Locator = client.locator(".cm-content").last();
      return shown.innerText();
    },
  };
}

describe("in headless Chromium", () => {
  it(
    "/docs: sign up and in through the reference's own try-it-out, then GET /api/v1/me with the session cookie and with the pasted bearer token — nothing leaves 127.0.0.1",
    { timeout: 180_000 },
    () =>
      withPage(async (page) => {
        const watch = await watchPage(page);
        const document = (await (await fetch(`${base}/openapi.json`)).json()) as {
          components: { securitySchemes: { cookieAuth: { name: string } } };
        };
        const response = await page.goto(`${base}/docs`);
        expect(response?.status()).toBe(200);
        expect(response?.headers()["content-security-policy"]).toContain("connect-src 'self'");
        expect(await page.title()).toBe("sv-sdk API — API reference");
        await page.getByRole("heading", { level: 1, name: "sv-sdk API" }).waitFor({ state: "visible" });
        await page.getByRole("heading", { level: 2, name: "Auth" }).waitFor({ state: "visible" });

        const docs = reference(page);
        const email = `docs-${randomUUID()}@example.test`;
        const password = "correct horse battery";

        await docs.tryOut("Sign up a user using email and password");
        await docs.body({ name: "Ada Docs", email, password });
        expect(await docs.send("200 OK")).toContain(email);
        await docs.close();

        await docs.tryOut("Sign in with email and password");
        await docs.body({ email, password });
        const signedIn = JSON.parse(await docs.send("200 OK")) as { token: string; user: { email: string } };
        expect(signedIn.user.email).toBe(email);
        // The browser now holds the session cookie the document names (HttpOnly: the page cannot read it).
        const cookies = await page.context().cookies(base);
        expect(cookies.find((c) => c.name === document.components.securitySchemes.cookieAuth.name)?.httpOnly).toBe(
          true,
        );
        await docs.close();

        const me = "The signed-in user, their session and the tenant the request acts in";
        await docs.tryOut(me);
        const withCookie = JSON.parse(await docs.send("200 OK")) as { user: { email: string } };
        expect(withCookie.user.email).toBe(email);
        await docs.close();

        // Without the cookie the same request is refused; with the token pasted into the page's
        // authentication settings it is answered again.
        await page.context().clearCookies();
        await docs.tryOut(me);
        expect(await docs.send("401 Unauthorized")).toContain("SESSION_REQUIRED");
        await docs.client.getByRole("button", { name: /^Authentication/ }).click();
        await docs.client.getByLabel("Bearer Token").fill(signedIn.token);
        const withToken = JSON.parse(await docs.send("200 OK")) as { user: { email: string } };
        expect(withToken.user.email).toBe(email);
        await docs.close();

        const screenshot = join(tmpdir(), `sv-sdk-docs-${randomUUID()}.png`);
        try {
          await page.screenshot({ path: screenshot });
          const png = await readFile(screenshot);
          expect(png.length).toBeGreaterThan(10_000);
          expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
        } finally {
          await rm(screenshot, { force: true });
        }
        await watch.expectClean();
      }),
  );

  it(
    "/docs at phone width (390 px) never scrolls sideways: the reference, its menu, an operation, its try-it-out",
    { timeout: 90_000 },
    () =>
      withPage(
        async (page) => {
          const watch = await watchPage(page);
          await page.goto(`${base}/docs`);
          await page.getByRole("heading", { level: 2, name: "Auth" }).waitFor({ state: "visible" });
          expect(await horizontalOverflow(page)).toEqual({ scrollWidth: 390, innerWidth: 390 });

          await page.getByRole("button", { name: "Open Menu" }).click();
          const entry = page.getByRole("link", { name: /Sign in with email and password/ }).first();
          await entry.waitFor({ state: "visible" });
          expect(await horizontalOverflow(page)).toEqual({ scrollWidth: 390, innerWidth: 390 });

          await entry.click();
          const operation = page
            .locator("section")
            .filter({ has: page.getByRole("heading", { name: "Sign in with email and password", exact: true }) });
          await operation
            .first()
            .getByRole("button", { name: /^Test Request/ })
            .first()
            .click();
          await page.getByRole("dialog").getByRole("button", { name: /^Send/ }).first().waitFor({ state: "visible" });
          expect(await horizontalOverflow(page)).toEqual({ scrollWidth: 390, innerWidth: 390 });
          await watch.expectClean();
        },
        { width: 390, height: 844 },
      ),
  );

  it("/dev/mail lists a verify-email the SDK sent, and shows it with the link inside a sandboxed frame", {
    timeout: 90_000,
  }, async () => {
    const to = `browser-${randomUUID()}@example.test`;
    const url = `https://app.example.test/verify?token=${randomUUID()}`;
    await sdk!.email.enqueueEmail({ to, template: "verify-email", data: { name: "Ada Browser", url } });
    expect(await sdk!.email.dispatchOnce()).toBeGreaterThanOrEqual(1);
    // A message whose HTML tries to script the viewer: the sandbox (and the page's content security
    // policy, which the srcdoc frame inherits) must stop it.
    const hostileTo = `hostile-${randomUUID()}@example.test`;
    const [hostile] = await sdk!.router
      .db("email")
      .insert(devMessages)
      .values({
        toAddress: hostileTo,
        fromAddress: "sv-sdk <no-reply@localhost>",
        subject: "Hostile",
        html: `<p id="content">Hostile</p><script>document.body.dataset.ran = "yes"; parent.document.title = "pwned";</script>`,
        text: "Hostile",
      })
      .returning();

    await withPage(async (page) => {
      expect((await page.goto(`${base}/dev/mail`))?.status()).toBe(200);
      expect(await page.title()).toBe("Development mail — sv-sdk mail");
      const row = page.getByRole("row").filter({ hasText: to });
      await row.getByRole("cell", { name: "verify-email" }).waitFor({ state: "visible" });
      await row.getByRole("link", { name: "Verify your email address" }).click();
      await page.waitForURL(/\/dev\/mail\/[0-9a-f-]{36}$/);

      await page.getByRole("heading", { level: 1, name: "Verify your email address" }).waitFor({ state: "visible" });
      expect(await page.locator("dd").filter({ hasText: to }).count()).toBe(1);
      expect(await page.locator("pre").innerText()).toContain(url);

      const iframe = page.locator("iframe");
      expect(await iframe.getAttribute("sandbox")).toBe("");
      const mail = page.frameLocator("iframe");
      const link = mail.getByRole("link", { name: "Verify email" });
      await link.waitFor({ state: "visible" });
      expect(await link.getAttribute("href")).toBe(url);
      expect(await mail.locator("body").innerText()).toContain("Hi Ada Browser,");

      expect((await page.goto(`${base}/dev/mail/${hostile!.id}`))?.status()).toBe(200);
      await page.frameLocator("iframe").locator("#content").waitFor({ state: "visible" });
      expect(await page.frameLocator("iframe").locator("body").getAttribute("data-ran")).toBeNull();
      expect(await page.title()).toBe("Hostile — sv-sdk mail");
    });
  });
});
