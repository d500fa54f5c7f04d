/**
 * Shutdown for the entry points: on SIGTERM or SIGINT, a list of steps run in order within one
 * deadline. A step that overruns its share is left behind (logged) and the next one runs anyway, so a
 * hung request or a database that stopped answering cannot keep the process — or the embedded
 * PostgreSQL, which is always the last step and has time kept for it — alive.
 */
import { constants } from "node:os";
import type { Logger } from "../logger.js";

export interface ShutdownStep {
  name: string;
  /** Does the step; `ms` is the time it has. */
  run(ms: number): unknown;
  /** Time kept for this step whatever the steps before it took. */
  reserveMs?: number;
}

/**
 * Runs `steps` in order within `timeoutMs`. Resolves true when every step finished in its time and
 * without an error, false otherwise (each problem is logged).
 */
export async function shutdownInOrder(steps: ShutdownStep[], timeoutMs: number, logger: Logger): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let clean = true;
  for (const [i, step] of steps.entries()) {
    const kept = steps.slice(i + 1).reduce((sum, later) => sum + (later.reserveMs ?? 0), 0);
    const ms = Math.max(0, deadline - Date.now() - kept);
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      Promise.resolve()
        .then(() => step.run(ms))
        .then(
          () => "done" as const,
          (error: unknown) => error,
        ),
      new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), ms))),
    ]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      clean = false;
      logger.error(`shutdown: ${step.name} did not finish within ${ms} ms; going on without it`);
    } else if (outcome !== "done") {
      clean = false;
      logger.error(`shutdown: ${step.name} failed`, {
        error: outcome instanceof Error ? outcome.message : String(outcome),
      });
    }
  }
  return clean;
}

/**
 * Calls `handler` on the first SIGTERM or SIGINT. Later ones are only logged: a terminal's Ctrl-C
 * reaches this process twice under `npm start` (from the terminal, and forwarded by npm), and a
 * second signal must not cut the drain short. Returns a function that removes the handlers.
 */
export function onShutdownSignal(handler: (signal: NodeJS.Signals) => void, logger?: Logger): () => void {
  let received: NodeJS.Signals | undefined;
  const listener = (signal: NodeJS.Signals) => {
    if (received) {
      logger?.info("shutdown already under way", { signal });
      return;
    }
    received = signal;
    handler(signal);
  };
  process.on("SIGTERM", listener);
  process.on("SIGINT", listener);
  return () => {
    process.off("SIGTERM", listener);
    process.off("SIGINT", listener);
  };
}

/** The conventional exit code of a process ended by `signal` (130 for SIGINT, 143 for SIGTERM). */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}
