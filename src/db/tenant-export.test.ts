/**
 * `sv-sdk tenants` and `sv-sdk tenant:export` against two real databases: a tenant placed on
 * `tenant_db` is listed with its placement, and its archive holds exactly its rows — counted and
 * hashed as the manifest says — read from the database it lives on; a wrong tenant is exit 2.
 */
import { spawn } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cheapHashingTestSdkOptions, signedInUser, tenantOf, useTwoDatabases } from "../../test/support.js";
import { coreCatalog } from "../core-modules.js";
import { createSdk, type Sdk } from "../index.js";
import { createTestRole } from "../testing.js";
import { exportTenant, UnknownTenantError } from "./tenant-export.js";
import { listTenants } from "./tenant-list.js";
import { parseTopology, type TopologyInput } from "./topology.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const databases = useTwoDatabases();
let topologyInput: TopologyInput;
let sdk: Sdk;
let dir: string;
let placed: { id: string; name: string };
let onMain: { id: string };

interface Line {
  type: "header" | "row" | "manifest";
  table?: string;
  row?: Record<string, unknown>;
  [key: string]: unknown;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "sv-export-"));
  topologyInput = {
    databases: databases.topology.databases,
    tenants: { defaultDatabase: "tenant_db" },
    regions: { eu: ["tenant_db"] },
  };
  sdk = createSdk(cheapHashingTestSdkOptions(databases.main, { topology: topologyInput }));
  await sdk.seed();
  const owner = await signedInUser(sdk);
  ({ tenant: placed } = await tenantOf(sdk, owner, `Export ${randomUUID().slice(0, 8)}`));
  await createTestRole(sdk, { permissions: ["docs:write", "docs:read"], assignTo: owner.user.id, tenant: placed.id });
  const onMainSdk = createSdk(cheapHashingTestSdkOptions(databases.main, { topology: databases.topology }));
  try {
    ({ tenant: onMain } = await tenantOf(onMainSdk, await signedInUser(onMainSdk)));
  } finally {
    await onMainSdk.close();
  }
}, 60_000);

afterAll(async () => {
  await sdk?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("listTenants (sv-sdk tenants)", () => {
  it("lists each tenant with its database, region and state", async () => {
    const tenants = await listTenants(databases.mainSql, coreCatalog(), parseTopology(topologyInput));
    expect(tenants.find((t) => t.id === placed.id)).toMatchObject({
      name: placed.name,
      database: "tenant_db",
      region: "eu",
      state: "active",
    });
    expect(tenants.find((t) => t.id === onMain.id)).toMatchObject({ database: "main", region: null, state: "active" });
  });
});

describe("exportTenant (sv-sdk tenant:export)", () => {
  it("writes the tenant's rows from its database, with a manifest whose counts and checksums match", async () => {
    const out = join(dir, "placed.ndjson.gz");
    const result = await exportTenant({
      topology: parseTopology(topologyInput),
      catalog: coreCatalog(),
      tenant: placed.id,
      out,
      batchSize: 1,
    });
    const text = gunzipSync(await readFile(out)).toString("utf8");
    const raw = text.split("\n").filter(Boolean);
    const lines = raw.map((l) => JSON.parse(l) as Line);
    expect(lines[0]).toMatchObject({
      type: "header",
      format: "sv-sdk.tenant-export",
      version: 1,
      database: "tenant_db",
    });
    const manifest = lines.at(-1)!;
    expect(manifest).toMatchObject({
      type: "manifest",
      tenant: { id: placed.id, name: placed.name },
      database: "tenant_db",
      region: "eu",
    });
    const migrations = manifest.migrations as { applied: number; shipped: number };
    expect(migrations.applied).toBe(migrations.shipped);
    expect(manifest.tables).toEqual(result.tables);

    // Every table's lines: counted and hashed as the manifest says.
    for (const table of result.tables) {
      const own = raw.filter((_, i) => lines[i]!.type === "row" && lines[i]!.table === table.name);
      expect(own.length, table.name).toBe(table.rows);
      expect(
        createHash("sha256")
          .update(own.map((l) => `${l}\n`).join(""))
          .digest("hex"),
        table.name,
      ).toBe(table.sha256);
    }
    const rows = (table: string) => lines.filter((l) => l.type === "row" && l.table === table).map((l) => l.row!);
    expect(rows("auth.organizations")).toEqual([expect.objectContaining({ id: placed.id, name: placed.name })]);
    // The counts are the tenant's rows on its database, and only its rows.
    const { tenantSql } = databases;
    const [roles] = await tenantSql<
      { n: number }[]
    >`select count(*)::int as n from permissions.roles where tenant_id = ${placed.id}`;
    expect(rows("permissions.roles")).toHaveLength(roles!.n);
    expect(roles!.n).toBeGreaterThan(0);
    expect(
      rows("permissions.role_permissions")
        .map((r) => r.permission)
        .sort(),
    ).toEqual(["docs:read", "docs:write"]);
    const [assigned] = await tenantSql<
      { n: number }[]
    >`select count(*)::int as n from permissions.user_roles where tenant_id = ${placed.id}`;
    expect(rows("permissions.user_roles")).toHaveLength(assigned!.n);
    for (const line of lines.filter((l) => l.type === "row" && "tenant_id" in l.row!)) {
      expect(line.row!.tenant_id).toBe(placed.id);
    }
    // Caches are recomputed, not exported.
    expect(result.tables.map((t) => t.name)).not.toContain("permissions.permission_cache");
  });

  it("refuses an unknown tenant with a clear error", async () => {
    await expect(
      exportTenant({
        topology: parseTopology(topologyInput),
        catalog: coreCatalog(),
        tenant: randomUUID(),
        out: join(dir, "none.gz"),
      }),
    ).rejects.toThrow(UnknownTenantError);
  });
});

/** Runs `sv-sdk …` on the two databases, killed if it outlives 60 s. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/index.ts", ...args], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      DATABASE_TOPOLOGY: JSON.stringify(topologyInput),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`sv-sdk ${args.join(" ")} did not exit within 60 s:\n${stdout}\n${stderr}`));
    }, 60_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("the commands", () => {
  it("sv-sdk tenants --json lists the placed tenant; tenant:export of an unknown tenant exits 2", async () => {
    const listed = await cli(["tenants", "--json"]);
    expect(listed.code, listed.stderr).toBe(0);
    const tenants = JSON.parse(listed.stdout) as { id: string; database: string; region: string | null }[];
    expect(tenants.find((t) => t.id === placed.id)).toMatchObject({ database: "tenant_db", region: "eu" });

    const unknown = await cli(["tenant:export", "no-such-tenant", "--out", join(dir, "x.gz")]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("no tenant has the id or slug 'no-such-tenant'");
  }, 120_000);
});
