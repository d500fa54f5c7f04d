/**
 * `sv-sdk/testing`: fixtures for testing code built on sv-sdk against a real PostgreSQL.
 */
export { startTestDatabase, createIsolatedDatabase, type TestDatabase, type IsolatedDatabase } from "./testing/database.js";
export { withRollback } from "./testing/rollback.js";
