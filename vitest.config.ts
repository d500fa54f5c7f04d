import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";
import { testTopologyName, type TestTopologyName } from "./src/testing/topologies.js";

const src = (file: string) => fileURLToPath(new URL(`./src/${file}`, import.meta.url));

/**
 * The topology the suite runs in (README, "Tests"): `SV_TOPOLOGY=all-in-one` (default),
 * `audit-split` or `tenants-split` (src/testing/topologies.ts). The global setup starts a second
 * PostgreSQL cluster for a split one; test/support.ts gives every `useTestSdk` the topology.
 */
const topology = testTopologyName(process.env.SV_TOPOLOGY);

/**
 * Tests that cannot pass yet in a topology, each with its reason (a product bug whose fix is under
 * way elsewhere). They are left out of that topology's run by test name — `file` says where the test
 * is — and run in the others; an entry goes when its fix lands. Nothing else is left out silently.
 */
/** A known product bug of the audit-split topology: the audit events of work done "at a place". */
const AFTER_COMMIT =
  "reads its audit events inside a rolled-back unit (withRollback); with audit on a database of its own they " +
  'travel through the outbox and exist there only once the unit commits (README, "Splitting a schema out honestly")';
const EMAIL_ROUTES = "src/modules/email/routes.test.ts";

const NOT_YET: Record<TestTopologyName, { file: string; test: string; reason: string }[]> = {
  "all-in-one": [],
  "audit-split": [
    ...[
      "creates, updates and deletes a tenant override, audited",
      "applies a signed event, audited, and ignores a replay of the same event id",
      "suppresses a hard-bounced or complaining address, and later mail to it is skipped",
      "reads and changes the signed-in user's preferences, audited; account mail cannot be opted out of",
      "unsubscribes with the List-Unsubscribe link of a message, without a session, and later mail is skipped",
    ].map((test) => ({ file: EMAIL_ROUTES, test, reason: AFTER_COMMIT })),
    { file: "src/db/unit-of-work.test.ts", test: "carries the request context into audit rows", reason: AFTER_COMMIT },
    {
      file: "src/db/unit-of-work.test.ts",
      test: "rolls back rows written directly and over HTTP",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/db/unit-of-work.test.ts",
      test: "keeps work registered with onRollback after the unit rolls back",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/db/unit-of-work.test.ts",
      test: "runs after-rollback work of a savepoint inside the enclosing transaction",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/audit/coverage.test.ts",
      test: "writes exactly one audit event per successful mutating call",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/audit/record.test.ts",
      test: "writes every field of the event and of the ambient context",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/audit/record.test.ts",
      test: "defaults the actor to the system and records platform events outside a tenant",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/audit/record.test.ts",
      test: "writes an event naming another tenant than the ambient one under that tenant",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/audit/record.test.ts",
      test: "redacts credential-like keys at any depth of metadata and changes",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/audit/record.test.ts",
      test: "writes a batch in one unit, ambient and explicitly scoped events alike",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/audit/record.test.ts",
      test: "refuses UPDATE, DELETE and TRUNCATE on audit tables to sv_app",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/audit/routes.test.ts",
      test: "lists the tenant's events newest first, filtered, page by page",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/audit/routes.test.ts",
      test: "shows platform readers every tenant, one tenant, or platform events",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/auth/auth-flow.test.ts",
      test: "walks the whole journey and audits each step",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/auth/auth-flow.test.ts",
      test: "answers a wrong password with 401 problem+json and audits the failure",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/auth/auth-flow.test.ts",
      test: "creates, invites, accepts and sets active, mirroring roles and auditing each step",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/auth/auth-security.test.ts",
      test: "revokes every session on password reset, and answers a reset request the same for unknown emails",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/auth/auth-security.test.ts",
      test: "bans (revoking sessions), unbans and impersonates, each audited; non-admins are refused",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/auth/auth-security.test.ts",
      test: "enables TOTP with backup codes, requires it at sign-in, and disables it, each audited",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/email/outbox.test.ts",
      test: "audits template changes with before and after, and bumps the version",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/email/outbox.test.ts",
      test: "writes a queued send with the rendered message and an audit event in the caller's transaction",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/email/outbox.test.ts",
      test: "skips a suppressed address with the reason recorded, whatever the category",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/permissions/routes.test.ts",
      test: "lets a tenant owner create, read, change and delete a role of the tenant, audited",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/permissions/routes.test.ts",
      test: "assigns, lists and removes in the tenant, audited",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/permissions/service.test.ts",
      test: "creates a role with its audit row, and refuses a name taken in the same scope",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/permissions/service.test.ts",
      test: "updates, grants, revokes and deletes, each with its audit row",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/permissions/service.test.ts",
      test: "inherits permissions transitively and refuses a cycle with its path",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/permissions/service.test.ts",
      test: "assigns and unassigns with audit rows, idempotently, and lists by user and tenant",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/permissions/service.test.ts",
      test: "gives a new user the global member role at sign-up, audited",
      reason: AFTER_COMMIT,
    },
    {
      file: "src/modules/permissions/service.test.ts",
      test: "mirrors organization member roles into tenant-scoped assignments",
      reason: AFTER_COMMIT,
    },
  ],
  "tenants-split": [
    {
      file: "src/modules/audit/coverage.test.ts",
      test: "writes exactly one audit event per successful mutating call",
      reason:
        "counts each call's audit events inside a rolled-back unit; a tenant created on tenant_db records its events " +
        "there through the outbox, after a commit",
    },
    {
      file: "src/modules/auth/auth-flow.test.ts",
      test: "creates, invites, accepts and sets active, mirroring roles and auditing each step",
      reason:
        "reads its audit events inside a rolled-back unit (withRollback); the events of a tenant on another database " +
        "travel through the outbox and exist there only once the unit commits",
    },
  ],
};

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

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const notYet = NOT_YET[topology];
if (notYet.length > 0) {
  process.stderr.write(
    `[${topology}] ${notYet.length} tests left out until their fix lands (vitest.config.ts, NOT_YET):\n` +
      notYet.map((t) => `  - ${t.file}: ${t.test}\n`).join(""),
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
    ...(notYet.length > 0 && {
      testNamePattern: new RegExp(`^(?!.*(?:${notYet.map((t) => escapeRegExp(t.test)).join("|")}))`),
    }),
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Files share one PostgreSQL; two workers match the two cores CI has.
    maxWorkers: 2,
  },
});
