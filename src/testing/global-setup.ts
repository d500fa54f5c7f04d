/**
 * vitest global setup: one PostgreSQL for the whole run, migrated once into a template.
 */
import type { TestProject } from "vitest/node";
import { startTestDatabase } from "./database.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** `url`: owner; `appUrl`: the sv_app login SDKs under test use; `adminUrl` and `template` make clones. */
    svTestDatabase: { url: string; appUrl: string; adminUrl: string; template: string };
  }
}

export default async function setup(project: TestProject) {
  const db = await startTestDatabase();
  project.provide("svTestDatabase", { url: db.url, appUrl: db.appUrl, adminUrl: db.adminUrl, template: db.template });
  return () => db.stop();
}
