/**
 * This repository's vitest global setup: one PostgreSQL for the whole run, migrated once into a
 * template — the same setup SDK users get from `sv-sdk/testing/vitest`.
 */
import { testDatabaseSetup } from "./vitest.js";

export default testDatabaseSetup();
