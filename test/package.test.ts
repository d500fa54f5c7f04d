/**
 * The published package works for someone else: `npm pack` (which builds dist/), install the tarball
 * into a fresh project, and run a script there that creates an SDK on a test database, signs a user
 * up inside a transaction and rolls it back — importing `sv-sdk` and `sv-sdk/testing` by name.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { createIsolatedDatabase, type IsolatedDatabase } from "../src/testing/database.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));
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
  },
  480_000,
);
