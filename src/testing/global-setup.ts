/**
 * vitest global setup: one PostgreSQL for the whole run, migrated once into a template.
 */
import type { TestProject } from "vitest/node";
import { startTestDatabase } from "./database.js";

declare module "vitest" {
  export interface ProvidedContext {
    svTestDatabase: { url: string; adminUrl: string; template: string };
  }
}

export default async function setup(project: TestProject) {
  const db = await startTestDatabase();
  project.provide("svTestDatabase", { url: db.url, adminUrl: db.adminUrl, template: db.template });
  return () => db.stop();
}
