/**
 * The pages a developer opens, in a real browser: the app served on 127.0.0.1, Debian's chromium
 * driven by playwright-core. /docs lists the endpoints; /dev/mail shows a verify-email the SDK sent
 * through the development transport, its HTML inside a sandbox where the mail's script does not run.
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
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createApp } from "../src/app.js";
import { freePort } from "../src/db/embedded.js";
import { createSdk, type Sdk } from "../src/index.js";
import { devMessages } from "../src/modules/email/index.js";
import { createIsolatedDatabase, type IsolatedDatabase } from "../src/testing/database.js";
import { testSdkOptions } from "./support.js";

const CHROMIUM = "/usr/bin/chromium";
const STEP_TIMEOUT_MS = 15_000;

let database: IsolatedDatabase | undefined;
let sdk: Sdk | undefined;
let server: ServerType | undefined;
let base = "";

beforeAll(async () => {
  database = await createIsolatedDatabase(inject("svTestDatabase"));
  sdk = createSdk(testSdkOptions(database));
  const app = createApp(sdk, { logRequests: false });
  const port = await freePort();
  await new Promise<void>((resolve) => {
    server = serve({ fetch: app.fetch, port, hostname: "127.0.0.1" }, () => resolve());
  });
  base = `http://127.0.0.1:${port}`;
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
async function withPage<T>(fn: (page: Page) => Promise<T>): Promise<T> {
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

describe("in headless Chromium", () => {
  it("/docs shows the API reference with the endpoints listed", { timeout: 90_000 }, () =>
    withPage(async (page) => {
      const response = await page.goto(`${base}/docs`);
      expect(response?.status()).toBe(200);
      expect(await page.title()).toBe("sv-sdk API — API reference");
      await page.getByRole("heading", { level: 1, name: "sv-sdk API" }).waitFor({ state: "visible" });
      for (const endpoint of [
        "GET /api/v1/me",
        "POST /api/auth/sign-in/email",
        "GET /health",
        "GET /api/v1/permissions/roles",
        "POST /api/v1/permissions/assignments",
        "GET /api/v1/audit/events",
        "GET /api/v1/email/dev/messages",
      ]) {
        await page.getByRole("heading", { level: 3, name: endpoint, exact: true }).waitFor({ state: "visible" });
      }
      const screenshot = join(tmpdir(), `sv-sdk-docs-${randomUUID()}.png`);
      try {
        await page.screenshot({ path: screenshot });
        const png = await readFile(screenshot);
        expect(png.length).toBeGreaterThan(10_000);
        expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
      } finally {
        await rm(screenshot, { force: true });
      }

      // The navigation jumps to a group and stays on screen while the reference scrolls.
      await page.locator("nav").getByRole("link", { name: "Audit", exact: true }).click();
      await page.waitForURL(`${base}/docs#tag-Audit`);
      const heading = await page.getByRole("heading", { level: 2, name: "Audit" }).boundingBox();
      expect(heading?.y).toBeLessThan(50);
      expect(Number(await page.evaluate("window.scrollY"))).toBeGreaterThan(0);
      const navLink = await page.locator("nav").getByRole("link", { name: "openapi.json" }).boundingBox();
      const viewport = page.viewportSize()!;
      expect(navLink && navLink.y >= 0 && navLink.y + navLink.height <= viewport.height, "the nav is on screen").toBe(true);
    }),
  );

  it("/dev/mail lists a verify-email the SDK sent, and shows it with the link inside a sandboxed frame", { timeout: 90_000 }, async () => {
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
