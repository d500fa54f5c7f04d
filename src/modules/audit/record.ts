/**
 * Recording audit events. The write joins the caller's unit of work, so the event commits with the
 * change it records or not at all; a failed audit insert fails the change (fail closed). The write
 * path is one plain INSERT: no lock, no read of the previous row — tamper evidence comes from the
 * sealer (seal.ts), which works on committed rows only.
 *
 * Where: an event lands beside its tenant's trail — the tenant's database when it has one, else the
 * audit schema's database (the platform's `insertRows`). When that is not the database the unit of
 * work writes in (`audit` split out, or an event for a tenant placed elsewhere) it travels through
 * the unit's outbox and is inserted after the commit, exactly once: the unit never commits in two
 * databases, so a change that rolls back leaves no event behind. Its `occurred_at` is then the
 * moment the audit database received it (the runtime role cannot set that column).
 */
import { sql } from "drizzle-orm";
import type { ModuleContext } from "../../db/module.js";
import { currentContext, type Actor, type Database } from "../../db/unit-of-work.js";
import { AuditErrors } from "./errors.js";
import { redact } from "../../redact.js";
import { UUID } from "../../uuid.js";

export interface AuditEventInput {
  /** `entity.verb`, e.g. `role.assigned`, `user.signed_up`. */
  action: string;
  target?: { type: string; id: string };
  /** Defaults to the unit of work's tenant (`"*"`, the platform scope, records a platform event). */
  tenantId?: string | null;
  /** Defaults to the unit of work's actor, else the system. */
  actor?: Actor;
  /** Free-form details; credential-like keys are redacted at any depth. */
  metadata?: Record<string, unknown>;
  /** The state before and after the change; credential-like keys are redacted at any depth. */
  changes?: { before?: unknown; after?: unknown };
}

/** `entity.verb`, lower case, dot-separated (`user.signed_up`, `audit.retention_applied`). */
const ACTION = /^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$/;
const ACTOR_TYPES = new Set(["user", "api_key", "system", "service", "webhook"]);
/** Rows per INSERT (one jsonb parameter each): bounded statements for very large batches. */
const ROWS_PER_STATEMENT = 1000;

function invalid(reason: string, event: AuditEventInput): never {
  throw AuditErrors.INVALID_AUDIT_EVENT({ reason, action: event.action });
}

/** One row's columns, validated, with the ambient context filled in and secrets redacted. */
function rowOf(event: AuditEventInput): Record<string, unknown> {
  const context = currentContext();
  if (typeof event.action !== "string" || event.action.length > 120 || !ACTION.test(event.action)) {
    invalid("action must look like entity.verb (lower case)", event);
  }
  const actor = event.actor ?? context.actor ?? { type: "system" as const };
  if (!ACTOR_TYPES.has(actor.type)) invalid(`unknown actor type '${actor.type}'`, event);
  if (event.target && (typeof event.target.type !== "string" || typeof event.target.id !== "string")) {
    invalid("target needs a type and an id", event);
  }
  const tenantId = event.tenantId !== undefined ? event.tenantId : context.tenantId;
  const tenant = tenantId === "*" ? null : (tenantId ?? null);
  if (tenant !== null && !UUID.test(tenant)) invalid("tenantId must be a uuid", event);
  // Only the descriptive columns: id, occurred_at and txid take their defaults where the row lands.
  return {
    tenant_id: tenant,
    actor_type: actor.type,
    actor_id: actor.id ?? null,
    action: event.action,
    target_type: event.target?.type ?? null,
    target_id: event.target?.id ?? null,
    ip: context.ip ?? null,
    user_agent: context.userAgent ?? null,
    request_id: context.requestId ?? null,
    metadata: event.metadata === undefined ? null : redact(event.metadata),
    changes: event.changes === undefined ? null : redact(event.changes),
  };
}

/**
 * Records one event in the database the unit of work runs at, whatever the event's tenant: for a
 * record of what happened to that database itself (retention dropped its partitions).
 */
export async function recordAuditEventHere(context: ModuleContext, event: AuditEventInput): Promise<void> {
  await recordAuditEventOn(context.db(), event);
}

/** Records one event through `db` (an owner's handle in a tenant move's hook, history-move.ts). */
export async function recordAuditEventOn(db: Database, event: AuditEventInput): Promise<void> {
  const row = rowOf(event);
  const columns = sql.raw(Object.keys(row).join(", "));
  await db.execute(sql`insert into audit.audit_logs (${columns}) select ${columns}
    from jsonb_populate_recordset(null::audit.audit_logs, ${JSON.stringify([row])}::jsonb)`);
}

/**
 * Records one audit event in the ambient transaction: it commits with the change it describes, and
 * if it cannot be written the error fails the whole unit of work.
 *
 * @example
 * await sdk.transaction(async () => {
 *   await createWidget(...);
 *   await sdk.audit.recordAuditEvent({
 *     action: "widget.created",
 *     target: { type: "widget", id },
 *     changes: { after: widget },
 *   });
 * });
 */
export async function recordAuditEvent(context: ModuleContext, event: AuditEventInput): Promise<void> {
  await context.insertRows("audit_logs", [rowOf(event)]);
}

/**
 * Records several events with one INSERT per 1000 events, in the ambient transaction; all of them or
 * none are written.
 *
 * @example
 * await sdk.audit.recordAuditEvents(ids.map((id) => ({ action: "invoice.archived", target: { type: "invoice", id } })));
 */
export async function recordAuditEvents(context: ModuleContext, events: readonly AuditEventInput[]): Promise<void> {
  if (events.length === 0) return;
  const rows = events.map(rowOf);
  const write = async () => {
    for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT)
      await context.insertRows("audit_logs", rows.slice(i, i + ROWS_PER_STATEMENT));
  };
  // More than one statement must be atomic even when no unit of work is open.
  await (rows.length > ROWS_PER_STATEMENT && !context.inUnitOfWork() ? context.transaction(write) : write());
}
