/**
 * This repository's vitest global setup: one PostgreSQL for the whole run, migrated once into a
 * template — the same setup SDK users get from `sv-sdk/testing/vitest` — and, when `SV_TOPOLOGY`
 * names a split topology (./topologies.ts), a second PostgreSQL cluster set up the same way, whose
 * database holds the split-out schema or the tenants.
 */
import type { TestProject } from "vitest/node";
import { startTestDatabase, type TestDatabase } from "./database.js";
import { testTopologyName } from "./topologies.js";
import { testDatabaseSetup } from "./vitest.js";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const name = testTopologyName(process.env.SV_TOPOLOGY);
  if (name === "all-in-one") {
    project.provide("svTestTopology", { name });
    return testDatabaseSetup()(project);
  }
  // Both clusters start (initdb, migrations, seed) side by side; if one fails, the other is stopped.
  const [main, second] = await Promise.allSettled([
    testDatabaseSetup()(project),
    startTestDatabase({ externalUrl: process.env.TEST_SECOND_DATABASE_URL }),
  ]);
  if (main.status === "rejected" || second.status === "rejected") {
    if (main.status === "fulfilled") await main.value();
    if (second.status === "fulfilled") await second.value.stop();
    throw main.status === "rejected" ? main.reason : (second as PromiseRejectedResult).reason;
  }
  const db: TestDatabase = second.value;
  project.provide("svTestTopology", {
    name,
    second: { url: db.url, appUrl: db.appUrl, adminUrl: db.adminUrl, template: db.template },
  });
  return async () => {
    await Promise.all([main.value(), db.stop()]);
  };
}
