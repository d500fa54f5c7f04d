/**
 * /docs in-process: the Scalar page, its content security policy and its script, served by us. The
 * browser test (test/browser.test.ts) drives the page itself.
 */
import { readFile } from "node:fs/promises";
import { gunzipSync } from "node:zlib";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { createDocsRoutes, scalarBundlePath } from "./docs.js";

const document = {
  info: { title: "Test API", version: "1.0.0" },
  paths: {
    "/health": { get: { summary: "Liveness" } },
    "/things/{id}": { delete: { description: 'Removes <b>a thing</b> & its "parts"' }, parameters: [] },
  },
};
const app = new Hono().route("/docs", createDocsRoutes({ document: async () => document }));

const nonceOf = (csp: string) => /script-src 'nonce-([^']+)'/.exec(csp)?.[1];

describe("GET /docs", () => {
  it("serves Scalar's page, loading our copy of its script with this request's nonce", async () => {
    const res = await app.request("/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    const html = await res.text();
    expect(html).toContain("<title>Test API — API reference</title>");
    expect(html).toContain('<html lang="en">');
    const nonce = nonceOf(res.headers.get("content-security-policy") ?? "");
    expect(nonce).toMatch(/^[A-Za-z0-9+/]{22}==$/);
    const scripts = [...html.matchAll(/<script([^>]*)>/g)].map((m) => m[1]!);
    expect(scripts).toHaveLength(2);
    for (const attributes of scripts) expect(attributes).toContain(`nonce="${nonce}"`);
    expect(scripts[0]).toMatch(/src="\/docs\/scalar\.js\?v=[0-9a-f]{16}"/);
    expect(html).toContain("Scalar.createApiReference('#app'");
    expect(html).toContain('"url": "/openapi.json"');
    // Nothing that would reach outside: no CDN, no web fonts, no telemetry, no agent.
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).toContain('"withDefaultFonts": false');
    expect(html).toContain('"telemetry": false');
  });

  it("holds the page to its origin with a content security policy, a new nonce each time", async () => {
    const [first, second] = await Promise.all([app.request("/docs"), app.request("/docs")]);
    const csp = first.headers.get("content-security-policy")!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("unsafe-eval");
    expect(csp).not.toMatch(/script-src[^;]*unsafe-inline/);
    expect(nonceOf(csp)).not.toBe(nonceOf(second.headers.get("content-security-policy")!));
    expect(first.headers.get("cache-control")).toBe("no-store");
  });

  it("lists the operations, escaped, for readers without JavaScript", async () => {
    const html = await (await app.request("/docs")).text();
    const noscript = /<noscript>([\s\S]*)<\/noscript>/.exec(html)?.[1] ?? "";
    expect(noscript).toContain("<code>GET</code> <code>/health</code> Liveness");
    expect(noscript).toContain(
      "<code>DELETE</code> <code>/things/{id}</code> Removes &lt;b&gt;a thing&lt;/b&gt; &amp; its &quot;parts&quot;",
    );
    expect(noscript).toContain('<a href="/openapi.json">');
  });
});

describe("GET /docs/scalar.js", () => {
  const versioned = async () =>
    /src="(\/docs\/scalar\.js\?v=[0-9a-f]{16})"/.exec(await (await app.request("/docs")).text())![1]!;

  it("is the standalone bundle of the installed @scalar/api-reference, cached for good under its versioned URL", async () => {
    const original = await readFile(scalarBundlePath());
    expect(original.toString("utf8")).toContain("createApiReference");
    const res = await app.request(await versioned());
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(res.headers.get("content-encoding")).toBeNull();
    expect(Buffer.from(await res.arrayBuffer()).equals(original)).toBe(true);
  });

  it("is gzipped for clients that accept it, and answers 304 to a matching ETag", async () => {
    const url = await versioned();
    const res = await app.request(url, { headers: { "accept-encoding": "gzip, deflate, br" } });
    expect(res.headers.get("content-encoding")).toBe("gzip");
    expect(res.headers.get("vary")).toBe("accept-encoding");
    const gzipped = Buffer.from(await res.arrayBuffer());
    const original = await readFile(scalarBundlePath());
    expect(gunzipSync(gzipped).equals(original)).toBe(true);
    expect(gzipped.length).toBeLessThan(original.length / 2);

    const again = await app.request(url, { headers: { "if-none-match": res.headers.get("etag")! } });
    expect(again.status).toBe(304);
  });

  it("is not cached for good under a URL that does not name its version", async () => {
    const res = await app.request("/docs/scalar.js?v=0000000000000000");
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-cache");
  });
});
