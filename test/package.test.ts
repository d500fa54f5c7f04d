/**
 * The published packages work for someone else: `npm pack` (which builds dist/), install the tarball
 * into a fresh project, and run a script there that creates an SDK on a test database, signs a user
 * up inside a transaction and rolls it back — importing `sv-sdk` and `sv-sdk/testing` by name.
 * The same for @sv-sdk/client, installed alone: its size, what its import loads, how long a client
 * file takes to type-check against it, and a sign-in from Node against a served API.
 * Then the README, word for word: its walkthrough in a fresh project with both tarballs, and every
 * TypeScript block in it type-checked (strict).
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify, stripVTControlCharacters } from "node:util";
import { serve } from "@hono/node-server";
import postgres from "postgres";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { createApp } from "../src/app.js";
import { freePort } from "../src/db/embedded.js";
import { createSdk } from "../src/index.js";
import { testSdkOptions } from "../src/testing.js";
import { createIsolatedDatabase, type IsolatedDatabase } from "../src/testing/database.js";
import { modulesLoadedBy, SERVER_CODE } from "./client-imports.js";
import { filePathOf, projectSteps, readmeBlocks } from "./readme-project.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));
const tsc = join(root, "node_modules/typescript/bin/tsc");
let workDir: string;
let database: IsolatedDatabase;
/** The tarballs the first two tests pack, for the README's project. */
const tarballs: { server?: string; client?: string } = {};

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

it("packs, installs into a fresh project, and signs a user up and rolls it back there", async () => {
  await run("npm", ["pack", "--pack-destination", workDir, "--silent"], { cwd: root, timeout: 240_000 });
  const tarball = (await readdir(workDir)).find((f) => f.endsWith(".tgz"));
  expect(tarball).toMatch(/^sv-sdk-.*\.tgz$/);
  tarballs.server = join(workDir, tarball!);
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
  await run(
    "npm",
    ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", join(workDir, tarball!)],
    {
      cwd: project,
      timeout: 240_000,
    },
  );
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
  const loaded = await modulesLoadedBy(
    `const { createClient } = await import("sv-sdk/client"); createClient("http://127.0.0.1:1");`,
    { cwd: project },
  );
  expect(loaded.some((url) => url.includes("/node_modules/sv-sdk/dist/client.js"))).toBe(true);
  expect(loaded.filter((url) => SERVER_CODE.test(url))).toEqual([]);
  console.log(`sv-sdk installed: ${await installedMegabytes(project)} MB; ${types.summary}`);
}, 480_000);

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
async function typeCheckClient(
  project: string,
  from: string,
): Promise<{ files: number; types: number; seconds: number; summary: string }> {
  const dir = join(project, `typecheck-${from.replace(/\W+/g, "-")}`);
  await run("mkdir", ["-p", dir]);
  await writeFile(join(dir, "client.ts"), CLIENT_FILE(from));
  await writeFile(join(dir, "tsconfig.json"), JSON.stringify(CLIENT_TSCONFIG));
  const started = performance.now();
  const { stdout } = await run(process.execPath, [tsc, "-p", dir, "--extendedDiagnostics"], {
    cwd: dir,
    timeout: 120_000,
  });
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

it("packs @sv-sdk/client, installs it alone into a fresh project, and signs in from Node with it", async () => {
  const packageDir = join(root, "packages/client");
  await run("npm", ["pack", "--pack-destination", workDir, "--silent"], { cwd: packageDir, timeout: 240_000 });
  const tarball = (await readdir(workDir)).find((f) => /^sv-sdk-client-.*\.tgz$/.test(f));
  expect(tarball).toBeDefined();
  tarballs.client = join(workDir, tarball!);
  const { stdout: listing } = await run("tar", ["-tzf", join(workDir, tarball!)]);
  expect(listing).toContain("package/dist/index.js");
  expect(listing).toContain("package/dist/index.d.ts");
  expect(listing).toContain("package/dist/THIRD_PARTY_LICENSES.md");

  const project = join(workDir, "client-consumer");
  await run("mkdir", ["-p", project]);
  await writeFile(
    join(project, "package.json"),
    JSON.stringify({ name: "client-consumer", private: true, type: "module" }),
  );
  await run(
    "npm",
    ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", join(workDir, tarball!)],
    {
      cwd: project,
      timeout: 240_000,
    },
  );
  // Installed alone, it brings hono and nothing else.
  expect((await readdir(join(project, "node_modules"))).filter((name) => !name.startsWith("."))).toEqual([
    "@sv-sdk",
    "hono",
  ]);
  const megabytes = await installedMegabytes(project);
  expect(megabytes).toBeLessThan(20);

  const types = await typeCheckClient(project, "@sv-sdk/client");
  expect(types.files).toBeLessThan(200);
  expect(types.types).toBeLessThan(5_000);
  console.log(`@sv-sdk/client installed: ${megabytes} MB; ${types.summary}`);

  // Its import loads its own file and hono's client, nothing else.
  const loaded = await modulesLoadedBy(
    `const { createClient } = await import("@sv-sdk/client"); createClient("http://127.0.0.1:1");`,
    { cwd: project },
  );
  expect(loaded.filter((url) => !/\/node_modules\/(@sv-sdk\/client|hono)\//.test(url))).toEqual([]);

  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const sdk = createSdk(testSdkOptions(database.url, { auth: { baseUrl } }));
  const server = serve({ fetch: createApp(sdk, { logRequests: false }).fetch, port, hostname: "127.0.0.1" });
  try {
    await writeFile(join(project, "node-client.mjs"), NODE_CLIENT);
    const { stdout } = await run("node", ["node-client.mjs"], {
      cwd: project,
      timeout: 60_000,
      env: { ...process.env, API_URL: baseUrl },
    });
    expect(JSON.parse(stdout.trim().split("\n").pop()!)).toEqual({
      signUp: null,
      signIn: null,
      me: 200,
      email: true,
      bearer: 200,
    });
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await sdk.close();
  }
}, 480_000);

/** Where the README's walkthrough runs: its install lines install the packed sv-sdk instead of the registry's. */
function asRun(command: string): string {
  if (!/^npm install\b/.test(command)) return command;
  const words = command.split(" ").map((word) => (word === "sv-sdk" ? tarballs.server! : word));
  // From npm's cache where it can: the same packages this repository's lockfile installed.
  return [...words, "--prefer-offline", "--no-audit", "--no-fund"].join(" ");
}

const READMES_TSCONFIG = {
  compilerOptions: {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    strict: true,
    skipLibCheck: true,
    noEmit: true,
    types: ["node"],
  },
  include: ["src", "test", "readme-blocks", "*.ts"],
};

it("follows the README's SDK and testing sections word for word in a fresh project, and type-checks every TypeScript block in it", async () => {
  expect(tarballs.server, "the first test packs sv-sdk").toBeDefined();
  expect(tarballs.client, "the second test packs @sv-sdk/client").toBeDefined();
  const project = join(workDir, "readme-project");
  await mkdir(project, { recursive: true });
  // The reader's own database: an empty one, which the walkthrough migrates. Its sv_app password is
  // the test server's (roles are cluster-wide; another would lock the other test files out).
  const name = `sv_readme_${Date.now()}`;
  const admin = postgres(database.url, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database "${name}"`);
  const inDatabase = (url: string) => Object.assign(new URL(url), { pathname: `/${name}` }).toString();
  const { adminUrl, appUrl } = inject("svTestDatabase");
  const env = {
    ...process.env,
    DATABASE_URL: inDatabase(database.url),
    DATABASE_APP_URL: inDatabase(appUrl),
    TEST_DATABASE_URL: adminUrl,
    NODE_ENV: "",
    VITEST: "",
    VITEST_WORKER_ID: "",
    VITEST_POOL_ID: "",
  };
  try {
    const steps = projectSteps(["Using it as an SDK", "Testing your code with sv-sdk"]);
    expect(steps.map((s) => (s.kind === "file" ? s.path : s.command))).toEqual([
      "npm init -y && npm pkg set type=module",
      "npm install sv-sdk drizzle-orm postgres zod",
      "npm install -D drizzle-kit tsx typescript vitest @types/node",
      "src/schema.ts",
      "drizzle.config.ts",
      "npx drizzle-kit generate --name billing",
      "src/main.ts",
      "npx tsx src/main.ts",
      "vitest.config.ts",
      "vitest.setup.ts",
      "test/invoices.test.ts",
      "npx vitest run",
    ]);
    const outputs: string[] = [];
    for (const step of steps) {
      if (step.kind === "file") {
        await mkdir(dirname(join(project, step.path)), { recursive: true });
        await writeFile(join(project, step.path), step.text);
        continue;
      }
      try {
        const { stdout } = await run("sh", ["-c", asRun(step.command)], { cwd: project, env, timeout: 240_000 });
        outputs.push(stripVTControlCharacters(stdout));
      } catch (error) {
        const { stdout, stderr } = error as { stdout?: string; stderr?: string };
        throw new Error(`README line ${step.line}: \`${step.command}\` failed\n${stdout ?? ""}\n${stderr ?? ""}`);
      }
    }
    const [, , , generate, main, vitest] = outputs;
    expect(generate).toMatch(/drizzle\/0000_billing\.sql/);
    expect(main).toMatch(/^ada-\d+@example\.com has 1 invoice\(s\)$/m);
    expect(vitest).toMatch(/Tests\s+1 passed \(1\)/);
    // The program's unit of work: its invoice, audit event and mail, in the reader's database.
    const reader = postgres(inDatabase(database.url), { max: 1, onnotice: () => {} });
    try {
      const count = async (query: Promise<{ n: number }[]>) => (await query)[0]!.n;
      expect({
        invoices: await count(reader`select count(*)::int as n from billing.invoices`),
        audited: await count(reader`select count(*)::int as n from audit.audit_logs where action = 'invoice.created'`),
        mailed: await count(
          reader`select count(*)::int as n from email.email_sends where template_key = 'invoice-created'`,
        ),
      }).toEqual({ invoices: 1, audited: 1, mailed: 1 });
    } finally {
      await reader.end({ timeout: 5 });
    }

    // Every TypeScript block of the README, strict: the walkthrough's files are in place; the
    // others go to readme-blocks/, one file each, beside both packages.
    await run("sh", ["-c", asRun(`npm install ${tarballs.client}`)], { cwd: project, env, timeout: 240_000 });
    const others = readmeBlocks().filter((b) => b.language === "ts" && !filePathOf(b));
    expect(others.length).toBeGreaterThanOrEqual(3);
    await mkdir(join(project, "readme-blocks"), { recursive: true });
    for (const block of others) await writeFile(join(project, "readme-blocks", `line-${block.line}.ts`), block.text);
    await writeFile(join(project, "tsconfig.readme.json"), JSON.stringify(READMES_TSCONFIG));
    const checked = await run("npx", ["tsc", "-p", "tsconfig.readme.json"], {
      cwd: project,
      env,
      timeout: 180_000,
    }).then(
      () => "",
      (error: { stdout?: string }) => error.stdout ?? String(error),
    );
    expect(checked, "tsc's errors, by README line (readme-blocks/line-N.ts is the block at line N)").toBe("");
  } finally {
    await admin.unsafe(`drop database if exists "${name}" with (force)`);
    await admin.end({ timeout: 5 });
  }
}, 600_000);
