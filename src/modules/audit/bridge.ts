/**
 * A bridge for callers that still build modules from a router instead of a context (the permissions
 * tests and two benchmarks, moved by their own owners): removed once none asks for it. The module's
 * own code and its CLIs build it from a context (`auditModule.create`).
 */
import { createModuleContext } from "../../db/module-context.js";
import { silentLogger } from "../../logger.js";
import { auditModule, type AuditModule } from "./index.js";

/** @deprecated Use `auditModule.create(context, {})`. */
export function createAuditModule(options: { router: Parameters<typeof createModuleContext>[0] }): AuditModule {
  return auditModule.create(createModuleContext(options.router, auditModule, silentLogger), {});
}
