import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";
import { testTopologyName } from "./src/testing/topologies.js";

const src = (file: string) => fileURLToPath(new URL(`./src/${file}`, import.meta.url));

/**
 * The topology the suite runs in (README, "Tests"): `SV_TOPOLOGY=all-in-one` (default),
 * `audit-split` or `tenants-split` (src/testing/topologies.ts). The global setup starts a second
 * PostgreSQL cluster for a split one; test/support.ts gives every `useTestSdk` the topology.
 */
const topology = testTopologyName(process.env.SV_TOPOLOGY);

const TEST_FILES = ["src/**/*.test.ts", "test/**/*.test.ts", "examples/**/*.test.ts"];

/**
 * A split topology runs the files that build their SDK on the run's topology — `useTestSdk` or
 * `createIsolatedTopology` (test/support.ts) — and no others: a file on databases of its own
 * (test/package.test.ts, test/browser.test.ts, the CLI's, the migrations', ...) runs the same in every
 * topology, and the all-in-one run has run it already. Found by reading the files, so a new test file
 * on the shared helpers joins the split runs by itself.
 */
function filesOnTheTopology(): string[] {
  const root = fileURLToPath(new URL(".", import.meta.url));
  return ["src", "test", "examples"].flatMap((dir) =>
    readdirSync(`${root}${dir}`, { recursive: true, encoding: "utf8" })
      .filter((file) => file.endsWith(".test.ts"))
      .map((file) => `${dir}/${file}`)
      .filter((file) => /\b(useTestSdk|createIsolatedTopology)\(/.test(readFileSync(`${root}${file}`, "utf8"))),
  );
}

export default defineConfig({
  // examples/ import the package by name, as an SDK user would; here the names resolve to the source.
  resolve: {
    alias: [
      { find: /^sv-sdk\/testing\/vitest$/, replacement: src("testing/vitest.ts") },
      { find: /^sv-sdk\/testing$/, replacement: src("testing.ts") },
      { find: /^sv-sdk\/client$/, replacement: src("client.ts") },
      { find: /^sv-sdk\/schema$/, replacement: src("schema.ts") },
      { find: /^sv-sdk$/, replacement: src("index.ts") },
    ],
  },
  test: {
    include: topology === "all-in-one" ? TEST_FILES : filesOnTheTopology(),
    globalSetup: ["./src/testing/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Files share one PostgreSQL; two workers match the two cores CI has.
    maxWorkers: 2,
  },
});
