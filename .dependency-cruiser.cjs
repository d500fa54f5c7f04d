/**
 * The layers of ../shared/DESIGN.md ("Layers", "Modules"), checked on every import — type imports
 * included — by `npm run lint`. Data flows top to bottom, never back up:
 *
 *   entry points   src/server.ts, src/cli/, src/testing/ (vitest's), src/config.ts, src/sdk-from-config.ts
 *   app            src/app.ts, src/http/ (but the kit)       composes the modules' routes
 *   package face   src/index.ts                               re-exports createSdk, the app, the public types
 *   sdk            src/sdk.ts, src/core-modules.ts            createSdk: registers the modules
 *   modules        src/modules/<module>/                      audit ← email, permissions ← auth
 *   http kit       src/http/kit/ and what it re-exports       what a module's HTTP files use
 *   platform       src/db/                                    names no module
 *   foundation     src/errors.ts, src/logger.ts, src/dev-secret.ts, src/redact.ts
 *
 * Tests may reach across (fixtures, harnesses); the rules hold for the code that ships.
 */
const TESTS = "(\\.test\\.ts$|^test/|^bench/|^examples/|^src/modules/[^/]+/testing/|/test-fixtures\\.ts$)";
const FOUNDATION = "^src/(errors|logger|dev-secret|redact|uuid)\\.ts$";
const KIT = "^src/http/(kit/|(problem|routes|context|headers|html)\\.ts$)";
const ABOVE_MODULES =
  "^src/(app\\.ts|index\\.ts|sdk\\.ts|core-modules\\.ts|server\\.ts|config\\.ts|sdk-from-config\\.ts|cli/|testing|client)";
/** A module's HTTP files: they (and only they) use the kit, and Hono. */
const HTTP_FILES = "^src/modules/[^/]+/(routes|middleware|guard|viewer|[a-z-]+-routes)\\.ts$";

module.exports = {
  forbidden: [
    {
      name: "no-cycles",
      severity: "error",
      comment: "An import cycle (type imports count): the layers and the modules' order have none.",
      from: { pathNot: TESTS },
      to: { circular: true },
    },
    {
      name: "foundation-imports-nothing-above",
      severity: "error",
      comment: "errors, logger, redaction: everything uses them, so they use nothing of ours but each other.",
      from: { path: FOUNDATION },
      to: { path: "^src/", pathNot: FOUNDATION },
    },
    {
      name: "platform-names-no-module",
      severity: "error",
      comment: "src/db is the platform: it knows modules only through their descriptors, never by import.",
      from: { path: "^src/db/", pathNot: TESTS },
      to: { path: "^src/", pathNot: ["^src/db/", FOUNDATION] },
    },
    {
      name: "kit-below-modules",
      severity: "error",
      comment: "The HTTP kit sits below the modules: it imports the platform and the foundation only.",
      from: { path: KIT, pathNot: TESTS },
      to: { path: "^src/", pathNot: [KIT, "^src/db/", FOUNDATION] },
    },
    {
      name: "modules-import-no-app",
      severity: "error",
      comment: "Modules are below the SDK and the app: createSdk hands them what they need.",
      from: { path: "^src/modules/", pathNot: TESTS },
      to: { path: ABOVE_MODULES },
    },
    {
      name: "modules-use-only-the-kit-of-http",
      severity: "error",
      comment: "A module's HTTP files use src/http/kit; the rest of src/http is the app's.",
      from: { path: "^src/modules/", pathNot: TESTS },
      to: { path: "^src/http/", pathNot: "^src/http/kit/" },
    },
    {
      name: "service-files-know-no-http",
      severity: "error",
      comment: "Service files take inputs and throw the module's errors; only HTTP files know Hono and the kit.",
      from: { path: "^src/modules/", pathNot: [TESTS, HTTP_FILES] },
      to: { path: ["^src/http/", "(^|/)node_modules/(hono|@hono)/"], dependencyTypesNot: ["type-only"] },
    },
    {
      name: "other-modules-through-their-index",
      severity: "error",
      comment: "Another module is reached through its index.ts only (its public face), never a deep import.",
      from: { path: "^src/modules/([^/]+)/", pathNot: TESTS },
      to: { path: "^src/modules/([^/]+)/", pathNot: ["^src/modules/$1/", "^src/modules/[^/]+/index\\.ts$"] },
    },
    {
      name: "audit-is-the-leaf",
      severity: "error",
      comment: "audit depends on the platform only.",
      from: { path: "^src/modules/audit/", pathNot: TESTS },
      to: { path: "^src/modules/(?!audit/)" },
    },
    {
      name: "email-and-permissions-call-audit-only",
      severity: "error",
      comment:
        "email and permissions may call audit; email asks for recipients through a port instead of importing auth.",
      from: { path: "^src/modules/(email|permissions)/", pathNot: TESTS },
      to: { path: "^src/modules/", pathNot: ["^src/modules/$1/", "^src/modules/audit/"] },
    },
    {
      name: "auth-calls-down-only",
      severity: "error",
      comment: "auth may call permissions, audit and email; nothing calls auth.",
      from: { path: "^src/modules/(?!auth/)", pathNot: TESTS },
      to: { path: "^src/modules/auth/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "(^dist/|^packages/client/dist/|\\.d\\.ts$)" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
