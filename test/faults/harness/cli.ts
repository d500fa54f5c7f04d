/**
 * The real command-line tool, `node --import tsx src/cli/index.ts <args>`, run as an operator runs
 * it, with only `env` (plus PATH and HOME), bounded by a timer: it is SIGKILLed if it outlives it.
 */
import { spawn } from "node:child_process";
import { REPO_ROOT } from "./processes.js";

export interface CliRun {
  /** The exit code; null when it was killed (see `timedOut`). */
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

export interface RunningCli {
  /** What it wrote to stderr so far. */
  stderr(): string;
  done: Promise<CliRun>;
}

export function runCli(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<CliRun> {
  return startCli(args, env, timeoutMs).done;
}

export function startCli(args: string[], env: Record<string, string>, timeoutMs = 30_000): RunningCli {
  const started = performance.now();
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/index.ts", ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, timeoutMs);
  const done = new Promise<CliRun>((resolve) =>
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - started, timedOut });
    }),
  );
  return { stderr: () => stderr, done };
}
