/**
 * `sv-sdk tenant:move` as a real process between two databases of DATABASE_TOPOLOGY: --dry-run prints the
 * plan and changes nothing, a move prints a line per step and the cutover's length, --finalize deletes
 * the kept rows, --abort gives a crashed move's tenant back to its source — each move, finalization and
 * abort with its audit row; bad combinations of options are usage errors (exit 2). A CLI killed
 * (SIGKILL, `--kill-after`) at each step is resumed to the end, or aborted back to its source, by
 * the next run, leaving no publication, slot or subscription behind.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import postgres from "postgres";
import { useTwoDatabases } from "../../../test/support.js";
import { coreCatalog } from "../../core-modules.js";
import { moveTenant } from "../../db/tenant-move.js";
import { replicationName } from "../../db/tenant-move-online.js";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const databases = useTwoDatabases();
let env: Record<string, string>;

function cli(
  args: string[],
  ms = 90_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/index.ts", "tenant:move", ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`tenant:move ${args.join(" ")} did not exit within ${ms / 1000} s:\n${stdout}\n${stderr}`));
    }, ms);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

const audited = async (action: string, tenantId: string) => {
  const [row] = await databases.mainSql<{ n: number }[]>`
    select count(*)::int as n from audit.audit_logs where action = ${action} and target_id = ${tenantId}`;
  return row!.n;
};

async function newTenant() {
  const tenantId = randomUUID();
  await databases.mainSql`insert into auth.organizations (id, name, slug) values (${tenantId}, 'Cli', ${`cli-${tenantId}`})`;
  await databases.mainSql`insert into permissions.roles (tenant_id, name) values (${tenantId}, 'editor'), (${tenantId}, 'viewer')`;
  return tenantId;
}

beforeAll(() => {
  const { main, tenantDb } = databases;
  env = {
    DATABASE_URL: main.url,
    DATABASE_APP_URL: main.appUrl,
    DATABASE_TOPOLOGY: JSON.stringify({
      databases: {
        main: { url: main.url, appUrl: main.appUrl },
        tenant_db: { url: tenantDb.url, appUrl: tenantDb.appUrl },
      },
    }),
  };
});

describe("sv-sdk tenant:move", () => {
  it("dry-runs, moves online with a line per step, and finalizes — audited", async () => {
    const tenantId = await newTenant();
    const plan = await cli(["--tenant", tenantId, "--to", "tenant_db", "--dry-run"]);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain(`plan: tenant ${tenantId} from 'main' to 'tenant_db', online`);
    expect(plan.stdout).toMatch(/permissions\.roles\s+2 rows\s+[\d.]+ KiB/);
    const [placed] = await databases.mainSql`select 1 from platform.tenant_placements where tenant_id = ${tenantId}`;
    expect(placed).toBeUndefined();

    const moved = await cli(["--tenant", tenantId, "--to", "tenant_db"]);
    expect(moved.code, moved.stderr).toBe(0);
    for (const step of ["preparing:", "syncing:", "cutover:", "switched:"]) expect(moved.stderr).toContain(step);
    expect(moved.stdout).toMatch(/moved tenant .* \(online\): 2 rows, writes refused for \d+ ms; 2 source rows kept/);
    expect(await audited("tenant.moved", tenantId)).toBe(1);

    const finalized = await cli(["--tenant", tenantId, "--finalize"]);
    expect(finalized.code, finalized.stderr).toBe(0);
    expect(finalized.stdout).toContain("2 kept rows deleted from 'main'");
    expect(await audited("tenant.move_finalized", tenantId)).toBe(1);
    const again = await cli(["--tenant", tenantId, "--finalize"]);
    expect(again.code).toBe(2);
    expect(await audited("tenant.move_finalized", tenantId)).toBe(1);
  }, 240_000);

  it("aborts a crashed move: the tenant is back on its source, audited", async () => {
    const tenantId = await newTenant();
    await expect(
      moveTenant({
        topology: databases.topology,
        catalog: coreCatalog(),
        tenantId,
        to: "tenant_db",
        afterStep: (phase) => {
          if (phase === "cutover") throw new Error("killed");
        },
      }),
    ).rejects.toThrow("killed");
    const aborted = await cli(["--tenant", tenantId, "--abort"]);
    expect(aborted.code, aborted.stderr).toBe(0);
    expect(aborted.stdout).toContain("(phase cutover): it is writable on 'main'");
    const [placement] =
      await databases.mainSql`select database, state from platform.tenant_placements where tenant_id = ${tenantId}`;
    expect(placement).toEqual({ database: "main", state: "active" });
    expect(await audited("tenant.move_aborted", tenantId)).toBe(1);
  }, 240_000);

  it("refuses two verbs at once, and a move without --to", async () => {
    const tenantId = randomUUID();
    const both = await cli(["--tenant", tenantId, "--abort", "--finalize"]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain("choose one of --abort, --finalize");
    const noTarget = await cli(["--tenant", tenantId]);
    expect(noTarget.code).toBe(2);
    expect(noTarget.stderr).toContain("--to is required");
  }, 120_000);
});

describe("sv-sdk tenant:move killed at each step", () => {
  const count = async (sql: postgres.Sql, query: string, ...params: unknown[]) => {
    const [row] = await sql.unsafe<{ n: number }[]>(`select count(*)::int as n from ${query}`, params as never[]);
    return row!.n;
  };
  const placement = async (tenantId: string) =>
    (await databases.mainSql`select database, state from platform.tenant_placements where tenant_id = ${tenantId}`)[0];
  const phase = async (tenantId: string) =>
    (await databases.mainSql`select phase from platform.tenant_moves where tenant_id = ${tenantId}`)[0]?.phase;
  const leftovers = async (tenantId: string) => {
    const name = replicationName(tenantId);
    return (
      (await count(databases.mainSql, "pg_publication where pubname = $1", name)) +
      (await count(databases.mainSql, "pg_replication_slots where slot_name like $1", `%${name}%`)) +
      (await count(databases.tenantSql, "pg_subscription where subname = $1", name))
    );
  };
  const rolesOn = (sql: postgres.Sql, tenantId: string) =>
    count(sql, "permissions.roles where tenant_id = $1", tenantId);

  async function killedAt(step: string) {
    const tenantId = await newTenant();
    const killed = await cli(["--tenant", tenantId, "--to", "tenant_db", "--kill-after", step]);
    expect(killed.signal, killed.stderr).toBe("SIGKILL");
    expect(killed.stderr).toContain(`crash drill: killed after '${step}'`);
    expect(await phase(tenantId)).toBe(step);
    return tenantId;
  }

  for (const step of ["preparing", "syncing", "cutover", "switched"]) {
    it(`resumes a move whose process was killed after '${step}'`, async () => {
      const tenantId = await killedAt(step);
      const resumed = await cli(["--tenant", tenantId, "--to", "tenant_db", "--resume"]);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.stdout).toContain("resumed");
      expect(await placement(tenantId)).toEqual({ database: "tenant_db", state: "active" });
      expect(await phase(tenantId)).toBe("done");
      expect(await rolesOn(databases.tenantSql, tenantId)).toBe(2);
      expect(await leftovers(tenantId)).toBe(0);
    }, 240_000);
  }

  for (const step of ["preparing", "syncing", "cutover"]) {
    it(`aborts a move whose process was killed after '${step}': the source is authoritative and writable`, async () => {
      const tenantId = await killedAt(step);
      const aborted = await cli(["--tenant", tenantId, "--abort"]);
      expect(aborted.code, aborted.stderr).toBe(0);
      expect(await placement(tenantId)).toEqual({ database: "main", state: "active" });
      expect(await rolesOn(databases.mainSql, tenantId)).toBe(2);
      expect(await rolesOn(databases.tenantSql, tenantId)).toBe(0);
      expect(await leftovers(tenantId)).toBe(0);
      // Writable again on the source, as the runtime writes: entering the tenant, then inserting.
      const runtime = postgres(databases.main.appUrl, { max: 1, onnotice: () => {} });
      try {
        await runtime.begin(async (tx) => {
          await tx`select platform.tenant_entry(${tenantId})`;
          await tx`insert into permissions.roles (tenant_id, name) values (${tenantId}, 'after-abort')`;
        });
      } finally {
        await runtime.end({ timeout: 5 });
      }
      expect(await rolesOn(databases.mainSql, tenantId)).toBe(3);
    }, 240_000);
  }

  it("refuses --kill-after with a step a move does not have", async () => {
    const wrong = await cli(["--tenant", randomUUID(), "--to", "tenant_db", "--kill-after", "done"]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("--kill-after must be one of");
  }, 120_000);
});
