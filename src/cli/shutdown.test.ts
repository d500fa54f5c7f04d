import { describe, expect, it } from "vitest";
import type { Logger } from "../logger.js";
import { shutdownInOrder } from "./shutdown.js";

function recordingLogger() {
  const errors: string[] = [];
  const logger: Logger = { debug() {}, info() {}, warn() {}, error: (message) => void errors.push(message) };
  return { logger, errors };
}

describe("shutdownInOrder", () => {
  it("runs every step in order and reports a clean shutdown", async () => {
    const { logger, errors } = recordingLogger();
    const ran: string[] = [];
    const step = (name: string) => ({ name, run: async () => void ran.push(name) });
    expect(await shutdownInOrder([step("http"), step("sdk"), step("cluster")], 1000, logger)).toBe(true);
    expect(ran).toEqual(["http", "sdk", "cluster"]);
    expect(errors).toEqual([]);
  });

  it("goes on past a step that hangs or fails, keeps the last step's reserve, and ends within the timeout", async () => {
    const { logger, errors } = recordingLogger();
    const given: Record<string, number> = {};
    let clusterStopped = false;
    const started = Date.now();
    const clean = await shutdownInOrder(
      [
        { name: "HTTP server", run: (ms) => ((given.http = ms), new Promise(() => {})) },
        { name: "the SDK", run: () => Promise.reject(new Error("pool is gone")) },
        {
          name: "embedded PostgreSQL",
          reserveMs: 300,
          run: async (ms) => {
            given.cluster = ms;
            await new Promise((r) => setTimeout(r, 50));
            clusterStopped = true;
          },
        },
      ],
      1000,
      logger,
    );
    const elapsed = Date.now() - started;
    expect(clean).toBe(false);
    expect(clusterStopped).toBe(true);
    expect(given.http).toBeLessThanOrEqual(700);
    expect(given.cluster).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(1100);
    expect(errors).toEqual([
      expect.stringMatching(/^shutdown: HTTP server did not finish within \d+ ms/),
      "shutdown: the SDK failed",
    ]);
  });
});
