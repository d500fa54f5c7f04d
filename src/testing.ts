/**
 * `sv-sdk/testing`: fixtures for testing code built on sv-sdk against a real PostgreSQL — a test
 * database migrated once into a template, the rollback fixture, isolated clones for work that must
 * commit, and factories for users, sessions, tenants and roles.
 */
export {
  startTestDatabase,
  createIsolatedDatabase,
  type TestDatabase,
  type IsolatedDatabase,
} from "./testing/database.js";
export { withRollback } from "./testing/rollback.js";
export {
  addTestMember,
  cookieHeader,
  createTestRole,
  createTestSdk,
  createTestTenant,
  createTestUser,
  TEST_ORIGIN,
  testSdkOptions,
  cheapHashingTestSdkOptions,
  withoutRateLimits,
  type TestDatabaseUrls,
  type TestUser,
} from "./testing/factories.js";
