/**
 * The published packages work for someone else: `npm pack` (which builds dist/), install the tarball
 * into a fresh project, and run a script there that creates an SDK on a test database, signs a user
 * up inside a transaction and rolls it back — importing `sv-sdk` and `sv-sdk/testing` by name.
 * The same for @sv-sdk/client, installed alone: its size, what its import loads, how long a client
 * file takes to type-check against it, and a sign-in from Node against a served API.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { serve } from "@hono/node-server";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { createApp } from "../src/app.js";
import { freePort } from "../src/db/embedded.js";
import { createSdk } from "../src/index.js";
import { testSdkOptions } from "../src/testing.js";
import { createIsolatedDatabase, type IsolatedDatabase } from "../src/testing/database.js";
import { modulesLoadedBy, SERVER_CODE } from "./client-imports.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));
const tsc = join(root, "node_modules/typescript/bin/tsc");
let workDir: string;
let database: IsolatedDatabase;

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), "sv-sdk-consumer-"));
  database = await createIsolatedDatabase(inject("svTestDatabase"));
});
afterAll(async () => {
  await database?.drop();
  await rm(workDir, { recursive: true, force: true });
});

const CONSUMER = `
import { eq } from "drizzle-orm";
import { createSdk, users } from "sv-sdk";
import { withRollback } from "sv-sdk/testing";

const sdk = createSdk({ databaseUrl: process.env.DATABASE_URL, databaseAppUrl: process.env.DATABASE_APP_URL, environment: "test" });
const email = "packed-" + Date.now() + "@example.test";
let inside = 0;
await withRollback(sdk, async () => {
  await sdk.transaction(() => sdk.auth.createUser({ email, password: "correct horse battery", name: "Packed" }));
  inside = (await sdk.db().select().from(users).where(eq(users.email, email))).length;
});
const after = (await sdk.db().select().from(users).where(eq(users.email, email))).length;
await sdk.close();
console.log(JSON.stringify({ inside, after }));
`;

it(
  "packs, installs into a fresh project, and signs a user up and rolls it back there",
  async () => {
    await run("npm", ["pack", "--pack-destination", workDir, "--silent"], { cwd: root, timeout: 240_000 });
    const tarball = (await readdir(workDir)).find((f) => f.endsWith(".tgz"));
    expect(tarball).toMatch(/^sv-sdk-.*\.tgz$/);
    const { stdout: listing } = await run("tar", ["-tzf", join(workDir, tarball!)]);
    expect(listing).toContain("package/dist/index.js");
    expect(listing).toContain("package/dist/index.d.ts");
    expect(listing).toContain("package/dist/testing.js");
    expect(listing).toContain("package/drizzle/0000_init.sql");
    expect(listing).not.toMatch(/\.test\.(js|ts)/);

    const project = join(workDir, "consumer");
    await run("mkdir", ["-p", project]);
    await writeFile(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
    await writeFile(join(project, "consumer.mjs"), CONSUMER);
    // From npm's cache where it can: the same packages this repository's lockfile installed.
    await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", join(workDir, tarball!)], {
      cwd: project,
      timeout: 240_000,
    });
    const { stdout } = await run("node", ["consumer.mjs"], {
      cwd: project,
      timeout: 60_000,
      env: { ...process.env, DATABASE_URL: database.url, DATABASE_APP_URL: database.appUrl },
    });
    expect(JSON.parse(stdout.trim().split("\n").pop()!)).toEqual({ inside: 1, after: 0 });

    // sv-sdk/client from the server package: the same declarations, and no server code loaded.
    const types = await typeCheckClient(project, "sv-sdk/client");
    expect(types.files).toBeLessThan(200);
    expect(types.types).toBeLessThan(5_000);
    const loaded = await modulesLoadedBy(`const { createClient } = await import("sv-sdk/client"); createClient("http://127.0.0.1:1");`, { cwd: project });
    expect(loaded.some((url) => url.includes("/node_modules/sv-sdk/dist/client.js"))).toBe(true);
    expect(loaded.filter((url) => SERVER_CODE.test(url))).toEqual([]);
    console.log(`sv-sdk installed: ${await installedMegabytes(project)} MB; ${types.summary}`);
  },
  480_000,
);

/**
 * A frontend's client file, 40 lines: typed calls of both clients, and lines that must not compile
 * (were the declarations \`any\`, the unused @ts-expect-error directives would fail the check).
 */
const CLIENT_FILE = (from: string) => `import { createClient } from "${from}";

const client = createClient("http://localhost:3000");

export async function signIn(email: string, password: string): Promise<boolean> {
  const result = await client.auth.signIn.email({ email, password });
  return result.error === null;
}

export async function whoAmI(): Promise<string | null> {
  const res = await client.api.api.v1.me.$get();
  if (res.status !== 200) return null;
  const body = await res.json();
  return body.user.email;
}

export async function canWriteRoles(): Promise<boolean> {
  const res = await client.api.api.v1.permissions.check.$post({ json: { permissions: ["roles:write"] } });
  if (!res.ok) return false;
  const body = await res.json();
  return body.results["roles:write"] === true;
}

export async function roleNames(): Promise<string[]> {
  const res = await client.api.api.v1.permissions.roles.$get({ query: { limit: "20" } });
  if (!res.ok) return [];
  return (await res.json()).roles.map((role) => role.name);
}

export async function createTenant(name: string, slug: string): Promise<string | undefined> {
  const { data } = await client.auth.organization.create({ name, slug });
  return data?.id;
}

export function mistakes() {
  // @ts-expect-error a route the API does not have
  void client.api.api.v1.nothing.$get();
  // @ts-expect-error a password is a string
  void client.auth.signIn.email({ email: "a@example.test", password: 1 });
}
`;

const CLIENT_TSCONFIG = {
  compilerOptions: {
    target: "ES2022",
    module: "ESNext",
    moduleResolution: "Bundler",
    lib: ["ES2022", "DOM", "DOM.Iterable"],
    strict: true,
    skipLibCheck: true,
    noEmit: true,
    types: [],
  },
  files: ["client.ts"],
};

/** `tsc --noEmit` of CLIENT_FILE in `project`, as a frontend's build would run it. */
async function typeCheckClient(project: string, from: string): Promise<{ files: number; types: number; seconds: number; summary: string }> {
  const dir = join(project, `typecheck-${from.replace(/\W+/g, "-")}`);
  await run("mkdir", ["-p", dir]);
  await writeFile(join(dir, "client.ts"), CLIENT_FILE(from));
  await writeFile(join(dir, "tsconfig.json"), JSON.stringify(CLIENT_TSCONFIG));
  const started = performance.now();
  const { stdout } = await run(process.execPath, [tsc, "-p", dir, "--extendedDiagnostics"], { cwd: dir, timeout: 120_000 });
  const seconds = (performance.now() - started) / 1000;
  const stat = (name: string) => Number(new RegExp(`^${name}:\\s+([\\d.]+)`, "m").exec(stdout)?.[1]);
  const summary = `tsc --noEmit of a 40-line client of ${from}: ${seconds.toFixed(1)} s, ${stat("Files")} files, ${stat("Types")} types`;
  return { files: stat("Files"), types: stat("Types"), seconds, summary };
}

async function installedMegabytes(project: string): Promise<number> {
  const { stdout } = await run("du", ["-sk", join(project, "node_modules")]);
  return Math.round(Number(stdout.split("\t")[0]) / 102.4) / 10;
}

const NODE_CLIENT = `
import { createClient } from "@sv-sdk/client";
const base = process.env.API_URL;
const email = "packed-client-" + Date.now() + "@example.test";
const password = "correct horse battery";
const signUp = await createClient(base).auth.signUp.email({ email, password, name: "Packed" });
const cookies = createClient(base, { cookies: true });
const signIn = await cookies.auth.signIn.email({ email, password });
const me = await cookies.api.api.v1.me.$get();
const bearer = createClient(base, { bearer: true });
await bearer.auth.signIn.email({ email, password });
const bearerMe = await bearer.api.api.v1.me.$get();
console.log(JSON.stringify({ signUp: signUp.error, signIn: signIn.error, me: me.status, email: (await me.json()).user.email === email, bearer: bearerMe.status }));
`;

it(
  "packs @sv-sdk/client, installs it alone into a fresh project, and signs in from Node with it",
  async () => {
    const packageDir = join(root, "packages/client");
    await run("npm", ["pack", "--pack-destination", workDir, "--silent"], { cwd: packageDir, timeout: 240_000 });
    const tarball = (await readdir(workDir)).find((f) => /^sv-sdk-client-.*\.tgz$/.test(f));
    expect(tarball).toBeDefined();
    const { stdout: listing } = await run("tar", ["-tzf", join(workDir, tarball!)]);
    expect(listing).toContain("package/dist/index.js");
    expect(listing).toContain("package/dist/index.d.ts");
    expect(listing).toContain("package/dist/THIRD_PARTY_LICENSES.md");

    const project = join(workDir, "client-consumer");
    await run("mkdir", ["-p", project]);
    await writeFile(join(project, "package.json"), JSON.stringify({ name: "client-consumer", private: true, type: "module" }));
    await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", join(workDir, tarball!)], {
      cwd: project,
      timeout: 240_000,
    });
    // Installed alone, it brings hono and nothing else.
    expect((await readdir(join(project, "node_modules"))).filter((name) => !name.startsWith("."))).toEqual(["@sv-sdk", "hono"]);
    const megabytes = await installedMegabytes(project);
    expect(megabytes).toBeLessThan(20);

    const types = await typeCheckClient(project, "@sv-sdk/client");
    expect(types.files).toBeLessThan(200);
    expect(types.types).toBeLessThan(5_000);
    console.log(`@sv-sdk/client installed: ${megabytes} MB; ${types.summary}`);

    // Its import loads its own file and hono's client, nothing else.
    const loaded = await modulesLoadedBy(`const { createClient } = await import("@sv-sdk/client"); createClient("http://127.0.0.1:1");`, { cwd: project });
    expect(loaded.filter((url) => !/\/node_modules\/(@sv-sdk\/client|hono)\//.test(url))).toEqual([]);

    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const sdk = createSdk(testSdkOptions(database.url, { auth: { baseUrl } }));
    const server = serve({ fetch: createApp(sdk, { logRequests: false }).fetch, port, hostname: "127.0.0.1" });
    try {
      await writeFile(join(project, "node-client.mjs"), NODE_CLIENT);
      const { stdout } = await run("node", ["node-client.mjs"], { cwd: project, timeout: 60_000, env: { ...process.env, API_URL: baseUrl } });
      expect(JSON.parse(stdout.trim().split("\n").pop()!)).toEqual({ signUp: null, signIn: null, me: 200, email: true, bearer: 200 });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await sdk.close();
    }
  },
  480_000,
);
