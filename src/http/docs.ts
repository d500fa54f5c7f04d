/**
 * `/docs`: the API reference, rendered in the browser by Scalar from `/openapi.json` — try-it-out
 * (cookie session or bearer token), search, request and response schemas, code samples, a phone layout.
 *
 * Nothing leaves the server's origin: Scalar's script is the standalone bundle of the
 * `@scalar/api-reference` package, served by us at `/docs/scalar.js` (never a CDN), with Scalar's web
 * fonts, telemetry, agent and hosted-client links switched off. A Content-Security-Policy with a
 * per-request nonce holds the page to that: scripts only with the nonce, connections to 'self' only.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzip } from "node:zlib";
import { promisify } from "node:util";
import { Scalar } from "@scalar/hono-api-reference";
import { Hono } from "hono";
import { escapeHtml } from "./html.js";

interface OpenApiOperation {
  summary?: string;
  description?: string;
}

interface DocumentForDocs {
  info: { title: string; version: string };
  paths: Record<string, Record<string, unknown>>;
}

export interface DocsOptions {
  /** The OpenAPI document the page renders (for the no-script list of operations). */
  document: () => Promise<DocumentForDocs>;
  /** Where the page fetches the document from. Default `/openapi.json`. */
  documentUrl?: string;
  /** Where this router is mounted, so the page can name its script. Default `/docs`. */
  basePath?: string;
}

/** The bundle's file name beside this module once built (dist/http/): see scalarBundlePath. */
export const BUNDLED_SCALAR_FILE = "scalar-standalone.js";

/**
 * Scalar's standalone browser bundle in the installed `@scalar/api-reference` (a devDependency): its
 * package.json's `browser` entry, one self-contained script that defines `window.Scalar`.
 */
export function installedScalarBundle(): string {
  const require = createRequire(import.meta.url);
  // The package's exports do not name the bundle: find its root from the main entry.
  let root = dirname(require.resolve("@scalar/api-reference"));
  while (!existsSync(join(root, "package.json")) && dirname(root) !== root) root = dirname(root);
  const { browser } = require(join(root, "package.json")) as { browser?: string };
  if (!browser) throw new Error(`@scalar/api-reference at ${root} declares no browser bundle`);
  return join(root, browser);
}

/**
 * The bundle /docs serves: the copy `npm run build` puts beside this module (so a production install
 * needs none of Scalar's packages, which weigh some 250 MB), or else the installed package's.
 */
export function scalarBundlePath(): string {
  const copied = join(dirname(fileURLToPath(import.meta.url)), BUNDLED_SCALAR_FILE);
  if (existsSync(copied)) return copied;
  try {
    return installedScalarBundle();
  } catch (error) {
    throw new Error(
      `/docs needs Scalar's browser bundle: neither ${copied} (written by \`npm run build\`) nor the ` +
        "@scalar/api-reference package (a devDependency: `npm install`) was found",
      { cause: error },
    );
  }
}

interface Bundle {
  body: Buffer;
  gzipped: Buffer;
  /** A digest of the content: the page asks for `scalar.js?v=<version>`, so it may be cached for good. */
  version: string;
}

let bundle: Promise<Bundle> | undefined;
/** Read (and compressed) once, on first use: an SDK that never serves /docs never reads 5 MB. */
const loadBundle = () =>
  (bundle ??= (async () => {
    const body = await readFile(scalarBundlePath());
    const gzipped = await promisify(gzip)(body, { level: 9 });
    return { body, gzipped, version: createHash("sha256").update(body).digest("hex").slice(0, 16) };
  })().catch((error: unknown) => {
    bundle = undefined;
    throw error;
  }));

const METHODS = ["get", "post", "put", "patch", "delete"];

/** The operations as a plain list, for readers without JavaScript (and for crawlers and `curl`). */
function noScriptList(document: DocumentForDocs, documentUrl: string): string {
  const items: string[] = [];
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of METHODS) {
      const operation = item[method] as OpenApiOperation | undefined;
      if (!operation) continue;
      const text = operation.summary ?? operation.description ?? "";
      items.push(`<li><code>${method.toUpperCase()}</code> <code>${escapeHtml(path)}</code> ${escapeHtml(text)}</li>`);
    }
  }
  return `<noscript><h1>${escapeHtml(document.info.title)}</h1><p>This reference needs JavaScript. The OpenAPI document: <a href="${escapeHtml(documentUrl)}">${escapeHtml(documentUrl)}</a>.</p><ul>${items.join("")}</ul></noscript>`;
}

/**
 * The page's policy. Styles stay 'unsafe-inline': Scalar (Vue) sets style attributes and renders
 * style elements of its own, which a nonce cannot cover; scripts need the nonce, and every request
 * the page makes (the document, try-it-out) goes to this origin.
 */
const contentSecurityPolicy = (nonce: string) =>
  [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    "style-src 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");

/**
 * The docs router: mount it at `/docs`.
 *
 * @example
 * app.route("/docs", createDocsRoutes({ document: () => openApiDocument() }));
 */
export function createDocsRoutes(options: DocsOptions) {
  const documentUrl = options.documentUrl ?? "/openapi.json";
  const basePath = options.basePath ?? "/docs";
  const app = new Hono();

  app.get("/", async (c) => {
    const [document, { version }] = await Promise.all([options.document(), loadBundle()]);
    const nonce = randomBytes(16).toString("base64");
    const render = Scalar({
      url: documentUrl,
      // A `cdn` makes the integration load this one classic script (window.Scalar) and nothing else.
      cdn: `${basePath}/scalar.js?v=${version}`,
      pageTitle: `${document.info.title} — API reference`,
      nonce,
      // Off: Scalar's font CDN, its telemetry, its AI agent, and its hosted API client and developer
      // toolbar (both talk to scalar.com). The "Test request" try-it-out runs in the page itself.
      withDefaultFonts: false,
      telemetry: false,
      agent: { disabled: true },
      mcp: { disabled: true },
      hideClientButton: true,
      showDeveloperTools: "never",
      documentDownloadType: "json",
      // The document names no server: requests and code samples go to the origin the page came from.
      servers: [{ url: "/", description: "This server" }],
      defaultHttpClient: { targetKey: "shell", clientKey: "curl" },
    });
    const response = (await render(c, async () => {})) as Response;
    const html = (await response.text())
      .replace("<html>", '<html lang="en">')
      .replace('<div id="app"></div>', `<div id="app"></div>${noScriptList(document, documentUrl)}`);
    c.header("content-security-policy", contentSecurityPolicy(nonce));
    c.header("cache-control", "no-store");
    return c.html(html);
  });

  app.get("/scalar.js", async (c) => {
    const { body, gzipped, version } = await loadBundle();
    const etag = `"${version}"`;
    c.header("content-type", "text/javascript; charset=utf-8");
    c.header("vary", "accept-encoding");
    c.header("etag", etag);
    // The page names the bundle with its digest (?v=…): a new bundle is a new URL.
    c.header("cache-control", c.req.query("v") === version ? "public, max-age=31536000, immutable" : "no-cache");
    c.header("x-content-type-options", "nosniff");
    if (c.req.header("if-none-match") === etag) return c.body(null, 304);
    if (/\bgzip\b/.test(c.req.header("accept-encoding") ?? "")) {
      c.header("content-encoding", "gzip");
      return c.body(new Uint8Array(gzipped));
    }
    return c.body(new Uint8Array(body));
  });

  return app;
}
