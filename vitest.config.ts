import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const src = (file: string) => fileURLToPath(new URL(`./src/${file}`, import.meta.url));

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
    include: ["src/**/*.test.ts", "test/**/*.test.ts", "examples/**/*.test.ts"],
    globalSetup: ["./src/testing/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Files share one PostgreSQL; two workers match the two cores CI has.
    maxWorkers: 2,
  },
});
