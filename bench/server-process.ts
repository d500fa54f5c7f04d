/**
 * A server in a child process, as `npm start` runs one (`tsx src/server.ts` is `node --import tsx`):
 * its own event loop, its own memory (so RSS is the server's alone), configured only by its
 * environment. Bounded: it must answer its ready path within a minute, it is stopped with SIGTERM and
 * then SIGKILL, and it is killed when the bench process exits, whatever happened.
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { freePort } from "../src/db/embedded.js";
import type { ServerProcess, ServerProcessOptions } from "./types.js";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 20_000;
/** Kernel clock ticks per second (USER_HZ), fixed at 100 on Linux x86-64 and arm64. */
const CLOCK_TICKS = 100;

const live = new Set<() => void>();
// The last guard: a bench that exits (run.ts ends with process.exit) takes its servers with it.
process.on("exit", () => {
  for (const kill of live) kill();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startServerProcess(options: ServerProcessOptions): Promise<ServerProcess> {
  const port = await freePort();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    ...(process.env.HOME ? { HOME: process.env.HOME } : {}),
    ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
    HOST: "127.0.0.1",
    PORT: String(port),
    ...options.env,
  };
  // stdout carries the server's JSON log, one line per request: read as a log shipper would, keeping
  // only the last warnings and errors (what a failed request left behind); stderr (start-up failures)
  // is kept, its last few KB.
  const child = spawn(process.execPath, ["--import", "tsx", options.entry], {
    cwd: REPO_ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const problems: string[] = [];
  let partial = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split("\n");
    partial = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith('{"level":"warn"') && !line.startsWith('{"level":"error"')) continue;
      problems.push(line.slice(0, 600));
      if (problems.length > 20) problems.shift();
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const kill = () => child.kill("SIGKILL");
  live.add(kill);
  void exited.then(() => live.delete(kill));

  const url = `http://127.0.0.1:${port}`;
  const readyPath = options.readyPath ?? "/health";
  const started = Date.now();
  let ready = false;
  while (!ready) {
    if (child.exitCode !== null)
      throw new Error(
        `the server (${options.entry}) exited with ${child.exitCode}: ${stderr.trim().split("\n").slice(-3).join(" ")}`,
      );
    if (Date.now() - started > READY_TIMEOUT_MS) {
      kill();
      throw new Error(
        `the server (${options.entry}) did not answer ${readyPath} within ${READY_TIMEOUT_MS / 1000} s: ${stderr.trim().split("\n").slice(-3).join(" ")}`,
      );
    }
    try {
      const response = await fetch(`${url}${readyPath}`, { signal: AbortSignal.timeout(2000) });
      ready = response.ok;
      await response.body?.cancel();
    } catch {
      // not listening yet
    }
    if (!ready) await sleep(200);
  }

  const pid = child.pid!;
  const cpuMicros = async () => {
    // Fields 14 and 15 of /proc/<pid>/stat (utime, stime), counted after the command's closing parenthesis.
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / CLOCK_TICKS;
  };
  return {
    url,
    pid,
    async rssBytes() {
      const status = await readFile(`/proc/${pid}/status`, "utf8");
      const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status);
      if (!kib) throw new Error(`no VmRSS in /proc/${pid}/status (has the server exited?)`);
      return Number(kib[1]) * 1024;
    },
    cpuMicros,
    async mainThreadMicros() {
      // /proc/<pid>/schedstat is the main thread's: time on a CPU, time runnable but waiting for one.
      const [onCpu, waiting] = (await readFile(`/proc/${pid}/schedstat`, "utf8")).split(" ").map(Number);
      return { onCpu: onCpu! / 1000, waiting: waiting! / 1000 };
    },
    async settle(maxMs = 30_000) {
      // Work a load left behind (requests still being answered after the client went away, e.g.
      // queued password hashes) would otherwise land on the next load, or on another server's.
      const until = Date.now() + maxMs;
      let before = await cpuMicros();
      while (Date.now() < until) {
        await sleep(250);
        const now = await cpuMicros();
        if (now - before < 0.05 * 250_000) return;
        before = now;
      }
    },
    stderr: () => stderr,
    problems: () => [...problems],
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(kill, STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}
