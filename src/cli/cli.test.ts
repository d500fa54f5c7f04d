/**
 * `sv-sdk` as real processes against an isolated database: help and usage errors, migrate (twice),
 * seed, create-admin (who can then sign in and do anything), audit:verify.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { cheapHashingTestSdkOptions } from "../../test/support.js";
import { createSdk } from "../index.js";
import { createIsolatedDatabase, type IsolatedDatabase, startTestDatabase } from "../testing/database.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const COMMANDS = [
  "migrate",
  "seed",
  "create-admin",
  "tenants",
  "tenant:export",
  "tenant:move",
  "audit:verify",
  "audit:retention",
  "email:worker",
];

let db: IsolatedDatabase;
let dataDir: string;
let owner: postgres.Sql;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `sv-sdk …` with only the given environment (plus PATH), killed if it outlives `ms`. */
function cli(
  args: string[],
  options: { env?: Record<string, string>; stdin?: string; ms?: number } = {},
): Promise<Ran> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/index.ts", ...args], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      DATA_DIR: dataDir,
      DATABASE_URL: db.url,
      DATABASE_APP_URL: db.appUrl,
      ...options.env,
    },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(options.stdin ?? "");
  const ms = options.ms ?? 90_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`sv-sdk ${args.join(" ")} did not exit within ${ms / 1000} s:\n${stdout}\n${stderr}`));
    }, ms);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  const test = inject("svTestDatabase");
  db = await createIsolatedDatabase(test);
  dataDir = await mkdtemp(join(tmpdir(), "sv-sdk-cli-"));
  owner = postgres(db.url, { max: 1, onnotice: () => {} });
  // Start from an empty database: the clone comes migrated; this one must be migrated by the CLI.
  await owner.unsafe(`drop schema if exists auth, email, audit, permissions, platform, drizzle cascade`);
});

afterAll(async () => {
  await owner?.end({ timeout: 5 });
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe("sv-sdk", () => {
  it("lists every command, answers --help for each, and rejects an unknown command with exit 2", async () => {
    const help = await cli(["--help"]);
    expect(help.code).toBe(0);
    for (const name of COMMANDS) expect(help.stdout).toContain(name);

    const each = await Promise.all(COMMANDS.map((name) => cli([name, "--help"])));
    each.forEach((ran, i) => {
      expect(ran.code, COMMANDS[i]).toBe(0);
      expect(ran.stdout, COMMANDS[i]).toContain(`Usage: sv-sdk ${COMMANDS[i]}`);
    });

    const unknown = await cli(["frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
    expect(unknown.stderr).toContain("Usage: sv-sdk <command>");

    const badOption = await cli(["migrate", "--force"]);
    expect(badOption.code).toBe(2);
    expect(badOption.stderr).toMatch(/sv-sdk migrate: .*--force/);
  }, 180_000);

  it("migrates, then reports up to date; seeds; creates an administrator who can sign in and do anything", async () => {
    const first = await cli(["migrate"]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/main: applied \d+ migration\(s\)/);
    const second = await cli(["migrate"]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/main: up to date/);

    const seed = await cli(["seed"]);
    expect(seed.code, seed.stderr).toBe(0);
    const [roles] = await owner<
      { n: number }[]
    >`select count(*)::int as n from permissions.roles where tenant_id is null and built_in`;
    expect(roles!.n).toBe(4);

    const missing = await cli(["create-admin", "--name", "Ada"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("--email is required");
    const short = await cli(["create-admin", "--email", "ada@example.test", "--name", "Ada", "--password-stdin"], {
      stdin: "short\n",
    });
    expect(short.code).toBe(2);
    expect(short.stderr).toContain("at least 8 characters");

    const created = await cli(["create-admin", "--email", "Ada@Example.test", "--name", "Ada Admin"]);
    expect(created.code, created.stderr).toBe(0);
    const password = /generated password \(shown once\): (\S+)/.exec(created.stdout)?.[1];
    expect(password).toBeDefined();
    const again = await cli(["create-admin", "--email", "ada@example.test", "--name", "Ada", "--password-stdin"], {
      stdin: "another long password\n",
    });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("already exists");
    expect(again.stdout + again.stderr).not.toContain("another long password");

    const sdk = createSdk(cheapHashingTestSdkOptions(db));
    try {
      const signedIn = await sdk.auth.api.signInEmail({ body: { email: "ada@example.test", password: password! } });
      const userId = signedIn.user.id;
      expect(await sdk.permissions.can(userId, "anything:x")).toBe(true);
      const [user] = await owner`select role, email_verified from auth.users where id = ${userId}`;
      expect(user).toEqual({ role: "admin", email_verified: true });
      const [event] = await owner`select actor_type, actor_id, tenant_id from audit.audit_logs
                                   where action = 'user.created_by_cli' and target_id = ${userId}`;
      expect(event).toEqual({ actor_type: "system", actor_id: "cli", tenant_id: null });
    } finally {
      await sdk.close();
    }

    const verify = await cli(["audit:verify"]);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stderr).toContain("audit trail OK");
  }, 300_000);

  it("tenant:move validates its options before touching a database", async () => {
    const noTenant = await cli(["tenant:move", "--to", "main"]);
    expect(noTenant.code).toBe(2);
    expect(noTenant.stderr).toContain("--tenant is required");
    const badTenant = await cli(["tenant:move", "--tenant", "acme", "--to", "main"]);
    expect(badTenant.code).toBe(2);
    const unknownDb = await cli([
      "tenant:move",
      "--tenant",
      "7f9c0a52-3d7c-4d0e-9a53-8c3f6a1e2b4d",
      "--to",
      "elsewhere",
    ]);
    expect(unknownDb.code).toBe(2);
    expect(unknownDb.stderr).toContain("no database named 'elsewhere'");
    const noDatabase = await cli(["email:worker"], { env: { DATABASE_URL: "" } });
    expect(noDatabase.code).toBe(2);
    expect(noDatabase.stderr).toContain("DATABASE_URL");
  }, 180_000);

  it("tenant:move moves a tenant to another database of DATABASE_TOPOLOGY and shows its progress", async () => {
    // A cluster of its own: the move's replication slot waits for every write transaction open on its
    // cluster, and other files hold theirs open on the shared one (test/support.ts, useTwoDatabases).
    const cluster = await startTestDatabase();
    const other = await createIsolatedDatabase(cluster);
    try {
      const main = await createIsolatedDatabase(cluster);
      const sql = postgres(main.url, { max: 1, onnotice: () => {} });
      try {
        const tenantId = "7f9c0a52-3d7c-4d0e-9a53-8c3f6a1e2b4d";
        await sql`insert into auth.organizations (id, name, slug) values (${tenantId}, 'Acme', 'acme')`;
        await sql`insert into permissions.roles (tenant_id, name) values (${tenantId}, 'editor'), (${tenantId}, 'viewer')`;
        const topology = JSON.stringify({
          databases: {
            main: { url: main.url, appUrl: main.appUrl },
            tenant_acme: { url: other.url, appUrl: other.appUrl },
          },
        });
        const env = { DATABASE_URL: main.url, DATABASE_TOPOLOGY: topology };
        const moved = await cli(["tenant:move", "--tenant", tenantId, "--to", "tenant_acme", "--batch", "1"], { env });
        expect(moved.code, moved.stderr).toBe(0);
        expect(moved.stdout).toContain(`moved tenant ${tenantId} from 'main' to 'tenant_acme'`);
        expect(moved.stdout).toMatch(/permissions\.roles\s+2 rows/);
        expect(moved.stderr).toMatch(/copying: 100% \(2\/2\)/);
        const [placement] =
          await sql`select database, state from platform.tenant_placements where tenant_id = ${tenantId}`;
        expect(placement).toEqual({ database: "tenant_acme", state: "active" });
        const [event] =
          await sql`select count(*)::int as n from audit.audit_logs where action = 'tenant.moved' and target_id = ${tenantId}`;
        expect(event).toEqual({ n: 1 });
        const twice = await cli(["tenant:move", "--tenant", tenantId, "--to", "tenant_acme"], { env });
        expect(twice.code, twice.stderr).toBe(0);
        expect(twice.stdout).toContain("already lives on 'tenant_acme'");
      } finally {
        await sql.end({ timeout: 5 });
        await main.drop();
      }
    } finally {
      await other.drop();
      await cluster.stop();
    }
  }, 180_000);
});
