import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createIsolatedDatabase, type IsolatedDatabase } from "../../testing/database.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));
let db: IsolatedDatabase;
let owner: postgres.Sql;

beforeAll(async () => {
  db = await createIsolatedDatabase(inject("svTestDatabase"));
  owner = postgres(db.url, { max: 1, onnotice: () => {} });
});
afterAll(async () => {
  await owner?.end({ timeout: 5 });
  await db?.drop();
});

function run(script: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      "node",
      ["--import", "tsx", script, ...args],
      { cwd: root, env: { ...process.env, DATABASE_URL: db.url, DATABASE_APP_URL: db.appUrl }, timeout: 60_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe("audit CLIs", () => {
  it("audit:verify seals and reports OK, then names an altered row with exit code 1", async () => {
    await owner`insert into audit.audit_logs (actor_type, action, target_id) values ('system', 'doc.created', 'cli')`;
    // Open transactions of other test files hold the sealing horizon back: wait until it passes the row.
    for (let i = 0; i < 200; i++) {
      const [h] = await owner<{ passed: boolean }[]>`
        select pg_snapshot_xmin(pg_current_snapshot())::text::bigint > max(txid) as passed from audit.audit_logs`;
      if (h!.passed) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const ok = await run("src/cli/audit-verify.ts", ["--seal"]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, unsealedRows: 0 });
    const [row] = await owner<{ id: string }[]>`select id::text from audit.audit_logs where target_id = 'cli'`;
    await owner.begin(async (tx) => {
      await tx`alter table audit.audit_logs disable trigger audit_logs_append_only`;
      await tx`update audit.audit_logs set action = 'doc.deleted' where id = ${row!.id}`;
      await tx`alter table audit.audit_logs enable trigger audit_logs_append_only`;
    });
    const broken = await run("src/cli/audit-verify.ts", []);
    expect(broken.code).toBe(1);
    expect(JSON.parse(broken.stdout)).toMatchObject({ ok: false, firstBadRow: { id: row!.id, reason: "altered" } });
  });

  it("audit:retention runs as the owner, rejects a bad --days, and audits itself", async () => {
    expect((await run("src/cli/audit-retention.ts", ["--days", "zero"])).code).toBe(2);
    const result = await run("src/cli/audit-retention.ts", ["--days", "400"]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ retentionDays: 400, dropped: [] });
    const [event] = await owner<{ n: number }[]>`
      select count(*)::int as n from audit.audit_logs where action = 'audit.retention_applied'`;
    expect(event!.n).toBe(1);
  });
});
