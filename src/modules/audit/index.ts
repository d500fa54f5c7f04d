import { defineModule } from "../../db/module.js";
import { routerOf } from "../../db/module-context.js";
import type { Router } from "../../db/router.js";
import { createRetention } from "./retention.js";
import { createAuditRoutes as buildRoutes, type AuditRoutesOptions } from "./routes.js";
import { createSealing } from "./seal.js";
import { createAuditQueries } from "./query.js";
import { createAuditService } from "./service.js";

export { auditLogs, auditSeals, auditSchema, type ActorType } from "./schema.js";
export type { AuditEventInput } from "./service.js";
export type { SealResult, VerifyResult, BadRowReason } from "./seal.js";
export type { AuditEvent, AuditFilters, AuditPage, ExportFormat } from "./query.js";
export type { RetentionOptions, RetentionResult } from "./retention.js";
export { DEFAULT_RETENTION_DAYS } from "./retention.js";
export { AuditErrors } from "./errors.js";
export type { AuditRoutesOptions, AuditPermissions } from "./routes.js";

export interface AuditModuleOptions {
  router: Router;
}

/**
 * The audit module: the leaf every other module records its changes through — recording, sealing and
 * verification, queries and export, partitions and retention.
 *
 * @example
 * const audit = createAuditModule({ router });
 * await router.transaction(() => audit.recordAuditEvent({ action: "invoice.paid", target: { type: "invoice", id } }));
 * audit.startSealer({ intervalMs: 10_000 });
 * const report = await audit.verify();
 */
export function createAuditModule({ router }: AuditModuleOptions) {
  const recorder = createAuditService(router);
  return {
    ...recorder,
    ...createSealing(router),
    ...createAuditQueries(router),
    ...createRetention(router, recorder),
  };
}

export type AuditModule = ReturnType<typeof createAuditModule>;

/**
 * `/api/v1/audit` routes: `GET /events` (filtered, cursor-paginated, newest first) and
 * `GET /events/export` (streaming NDJSON or CSV).
 */
export function createAuditRoutes(options: AuditRoutesOptions) {
  return buildRoutes(options);
}

/**
 * The audit module's descriptor: its schema, where its tables live, how it is created.
 * The trail stays where it was written when a tenant moves (its seals are bound to that database's
 * transaction ids); reads and sealing visit every database.
 */
export const auditModule = defineModule({
  name: "audit",
  schema: "audit",
  tables: {
    audit_logs: { kind: "tenant", staysWhereWritten: true },
    audit_seals: { kind: "tenant", staysWhereWritten: true },
  },
  create: (context) => createAuditModule({ router: routerOf(context) }),
});
