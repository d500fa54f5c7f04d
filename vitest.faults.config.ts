/**
 * `npm run test:faults`: the fault scenarios (test/faults/*.fault.ts) against real PostgreSQL
 * processes they start, stop, freeze and restart themselves. Their files are not `*.test.ts`, so
 * `npm test` does not collect them. One file at a time: each scenario measures latencies on a
 * machine of two cores, and none may disturb another's clusters.
 */
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/faults/**/*.fault.ts"],
    globalSetup: ["./test/faults/global-setup.ts"],
    fileParallelism: false,
    maxWorkers: 1,
    // Each scenario bounds its own waits; these only stop a scenario that broke its bounds.
    testTimeout: 90_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
  },
});
