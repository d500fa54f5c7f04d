/**
 * The audit module's face: the descriptor, the `AuditModule` interface, the routes, the tables, the
 * errors and the public types. Nothing else of the folder is imported from outside it.
 */
import { defineModule, type ModuleContext } from "../../db/module.js";
import {
  exportEvents,
  openExport,
  queryEvents,
  type AuditExport,
  type AuditFilters,
  type AuditPage,
  type ExportFormat,
} from "./query.js";
import { moveTenantHistory } from "./history-move.js";
import { recordAuditEvent, recordAuditEvents, type AuditEventInput } from "./record.js";
import { applyRetention, ensurePartitions, type RetentionOptions, type RetentionResult } from "./retention.js";
import { createSealer, seal, type SealResult } from "./seal.js";
import { verify, type VerifyResult } from "./verify.js";

export { createAuditRoutes, type AuditPermissions, type AuditReader, type AuditRoutesOptions } from "./routes.js";
export { auditLogs, auditSeals, auditSchema, type ActorType } from "./schema.js";
export { AuditErrors } from "./errors.js";
export { DEFAULT_RETENTION_DAYS } from "./retention.js";
export type { AuditEventInput } from "./record.js";
export type { SealResult, DatabaseSealResult } from "./seal.js";
export type { SealAnchor } from "./schema.js";
export type { VerifyResult, BadRowReason, DatabaseVerifyReport } from "./verify.js";
export type { AuditEvent, AuditExport, AuditFilters, AuditPage, ExportFormat } from "./query.js";
export type { RetentionOptions, RetentionResult } from "./retention.js";

/**
 * The audit module: the leaf every other module records its changes through — recording, sealing and
 * verification, queries and export, partitions and retention.
 */
export interface AuditModule {
  /**
   * Records one audit event in the ambient transaction: it commits with the change it describes, and
   * if it cannot be written the error fails the whole unit of work.
   *
   * @example
   * await sdk.transaction(async () => {
   *   await createWidget(...);
   *   await sdk.audit.recordAuditEvent({ action: "widget.created", target: { type: "widget", id }, changes: { after: widget } });
   * });
   */
  recordAuditEvent(event: AuditEventInput): Promise<void>;
  /**
   * Records several events with one INSERT per 1000 events, in the ambient transaction; all of them or
   * none are written.
   *
   * @example
   * await sdk.audit.recordAuditEvents(ids.map((id) => ({ action: "invoice.archived", target: { type: "invoice", id } })));
   */
  recordAuditEvents(events: readonly AuditEventInput[]): Promise<void>;
  /**
   * Seals the committed, not yet sealed rows of every tenant in every database: one seal per tenant
   * and database with new rows, chained to that tenant's previous seal there. Safe to run from several
   * instances at once; a database that cannot be sealed does not stop the others (the error naming it
   * is thrown once they are done).
   *
   * @example
   * const { seals, rows } = await sdk.audit.seal();
   */
  seal(): Promise<SealResult>;
  /**
   * Checks every seal chain and every sealed row of every database, and names the database and the
   * first altered, missing or reordered row.
   *
   * @example
   * const result = await sdk.audit.verify();
   * if (!result.ok) console.error(result.database, result.firstBadRow); // the database, then { id: "1042", reason: "altered" }
   */
  verify(): Promise<VerifyResult>;
  /**
   * Seals in the background every `intervalMs` (default 10 s) until `stop()`. Errors go to `onError`
   * and the loop keeps going. Calling it twice keeps one loop.
   *
   * @example
   * sdk.audit.startSealer({ intervalMs: 10_000, onError: (e) => logger.error("audit sealing failed", { error: String(e) }) });
   */
  startSealer(options?: { intervalMs?: number; onError?: (error: unknown) => void }): void;
  /**
   * Stops the sealing loop and waits for a tick in progress. Idempotent.
   *
   * @example
   * await sdk.audit.stop();
   */
  stop(): Promise<void>;
  /**
   * One page of events, newest first. Pass `nextCursor` back for the next page; new events written
   * meanwhile never shift or repeat rows across pages.
   *
   * @example
   * const page = await sdk.audit.queryEvents({ tenantId, action: "role.", limit: 20 });
   * const older = await sdk.audit.queryEvents({ tenantId, action: "role." }, page.nextCursor);
   */
  queryEvents(filters?: AuditFilters, cursor?: string | null): Promise<AuditPage>;
  /**
   * Every matching event, newest first, streamed as NDJSON lines or CSV rows with flat memory.
   *
   * @example
   * return new Response(sdk.audit.exportEvents({ tenantId }, "csv"), { headers: { "content-type": "text/csv" } });
   */
  exportEvents(filters?: AuditFilters, format?: ExportFormat): ReadableStream<Uint8Array>;
  /**
   * The same export, its first page read before it returns: a 503 of the scope's own database is
   * thrown before any byte is sent, and `missingDatabases` names the databases that could not answer.
   *
   * @example
   * const { stream, missingDatabases } = await sdk.audit.openExport({ tenantId: "*" });
   */
  openExport(filters?: AuditFilters, format?: ExportFormat): Promise<AuditExport>;
  /**
   * Creates the monthly partitions of this month and `monthsAhead` more (default 3) in every database.
   * Returns the partitions created.
   *
   * @example
   * await sdk.audit.ensurePartitions(3); // at start-up, and monthly
   */
  ensurePartitions(monthsAhead?: number): Promise<{ database: string; partition: string }[]>;
  /**
   * Drops the partitions whose whole month is older than `retentionDays` and records an
   * `audit.retention_applied` event, in every database. Needs a member of `sv_maintenance` or the owner.
   *
   * @example
   * const { dropped } = await sdk.audit.applyRetention({ retentionDays: 400 });
   */
  applyRetention(options?: RetentionOptions): Promise<RetentionResult>;
}

function createAuditModule(context: ModuleContext): AuditModule {
  return {
    recordAuditEvent: (event) => recordAuditEvent(context, event),
    recordAuditEvents: (events) => recordAuditEvents(context, events),
    seal: () => seal(context),
    verify: () => verify(context),
    ...createSealer(context),
    queryEvents: (filters, cursor) => queryEvents(context, filters, cursor),
    exportEvents: (filters, format) => exportEvents(context, filters, format),
    openExport: (filters, format) => openExport(context, filters, format),
    ensurePartitions: (monthsAhead) => ensurePartitions(context, monthsAhead),
    applyRetention: (options) => applyRetention(context, options),
  };
}

/**
 * The audit module's descriptor: its schema, where its tables live, how it is created.
 * A tenant move does not replicate the trail (its seals are bound to the writing database's
 * transaction ids): at the switch, `onTenantSwitched` re-seals the tenant's history on the target,
 * anchored on the source chain's head (history-move.ts). Reads and sealing visit every database.
 *
 * @example
 * const audit = auditModule.create(context, {});
 * await audit.recordAuditEvent({ action: "invoice.paid", target: { type: "invoice", id } });
 */
export const auditModule = defineModule<AuditModule>({
  name: "audit",
  schema: "audit",
  tables: {
    audit_logs: { kind: "tenant", staysWhereWritten: true },
    audit_seals: { kind: "tenant", staysWhereWritten: true },
  },
  onTenantSwitched: (move) => moveTenantHistory(move),
  create: (context) => createAuditModule(context),
});
