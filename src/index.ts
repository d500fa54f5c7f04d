/**
 * sv-sdk: auth, permissions, audit and email for TypeScript backends, as one importable SDK — the
 * package's public face: createSdk (src/sdk.ts), the app that serves it, and the public types.
 */
export { createSdk, type CoreModules, type Sdk, type SdkOptions } from "./sdk.js";
export { defineModule, type ModuleContext, type ModuleDescriptor, type ModuleLifecycle } from "./db/module.js";
export { AppError, CommonErrors, defineErrors } from "./errors.js";
export { createApp, type App, type AppOptions } from "./app.js";
export { createRoutes, errorResponses, ProblemSchema } from "./http/routes.js";
export { defineEmailTemplate, type EmailTemplateDefinition } from "./modules/email/index.js";
export { organizations, users } from "./modules/auth/index.js";
export type { Actor, RequestContext } from "./db/unit-of-work.js";
export type { TopologyInput } from "./db/topology.js";
export type { AppMigrations, MigrationReport } from "./db/migrate.js";
export type { Logger } from "./logger.js";
export type { AuthOptions } from "./modules/auth/index.js";
export type { EmailOptions } from "./modules/email/index.js";
