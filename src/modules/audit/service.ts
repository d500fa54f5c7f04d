/**
 * Recording audit events. The write joins the caller's unit of work, so the event commits with the
 * change it records or not at all; a failed audit insert fails the change (fail closed). The write
 * path is one plain INSERT: no lock, no read of the previous row — tamper evidence comes from the
 * sealer (seal.ts), which works on committed rows only.
 */
import { sql, type SQL } from "drizzle-orm";
import type { Router } from "../../db/router.js";
import { currentContext, type Actor } from "../../db/unit-of-work.js";
import { AuditErrors } from "./errors.js";
import { redact } from "./redact.js";

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
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** 11 parameters a row; PostgreSQL takes at most 65535 in one statement. */
const ROWS_PER_STATEMENT = 1000;

function invalid(reason: string, event: AuditEventInput): never {
  throw AuditErrors.INVALID_AUDIT_EVENT({ reason, action: event.action });
}

/** One row's values, validated, with the ambient context filled in and secrets redacted. */
function rowValues(event: AuditEventInput): SQL {
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
  const metadata = event.metadata === undefined ? null : JSON.stringify(redact(event.metadata));
  const changes = event.changes === undefined ? null : JSON.stringify(redact(event.changes));
  return sql`(${tenant}::uuid, ${actor.type}, ${actor.id ?? null}, ${event.action}, ${event.target?.type ?? null},
    ${event.target?.id ?? null}, ${context.ip ?? null}, ${context.userAgent ?? null}, ${context.requestId ?? null},
    ${metadata}::jsonb, ${changes}::jsonb)`;
}

const INSERT_HEAD = sql`insert into audit.audit_logs
  (tenant_id, actor_type, actor_id, action, target_type, target_id, ip, user_agent, request_id, metadata, changes)
  values `;

/**
 * Row-level security checks an inserted row's tenant against the transaction's `sv.tenant_id`. An
 * event naming a tenant other than the ambient one (a platform admin acting on a tenant, a system job)
 * is written with that tenant selected; the common case, an event of the ambient tenant, stays one
 * statement.
 */
function needsOwnScope(event: AuditEventInput): boolean {
  if (event.tenantId === undefined) return false;
  const ambient = currentContext().tenantId;
  return ambient !== "*" && (ambient ?? null) !== event.tenantId;
}

export function createAuditService(router: Router) {
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
  async function recordAuditEvent(event: AuditEventInput): Promise<void> {
    const insert = () => router.db("audit").execute(sql`${INSERT_HEAD}${rowValues(event)}`);
    await (needsOwnScope(event) ? router.withTenant(event.tenantId!, insert) : insert());
  }

  /**
   * Records several events with one INSERT per 1000 events, in the ambient transaction; all of them or
   * none are written.
   *
   * @example
   * await sdk.audit.recordAuditEvents(ids.map((id) => ({ action: "invoice.archived", target: { type: "invoice", id } })));
   */
  async function recordAuditEvents(events: readonly AuditEventInput[]): Promise<void> {
    if (events.length === 0) return;
    const ambient = events.filter((e) => !needsOwnScope(e)).map(rowValues);
    const scoped = new Map<string | null, SQL[]>();
    for (const event of events.filter(needsOwnScope)) {
      const group = scoped.get(event.tenantId!) ?? [];
      group.push(rowValues(event));
      scoped.set(event.tenantId!, group);
    }
    const insert = async (rows: SQL[]) => {
      for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
        await router.db("audit").execute(sql`${INSERT_HEAD}${sql.join(rows.slice(i, i + ROWS_PER_STATEMENT), sql`, `)}`);
      }
    };
    const write = async () => {
      if (ambient.length > 0) await insert(ambient);
      for (const [tenantId, rows] of scoped) await router.withTenant(tenantId, () => insert(rows));
    };
    // More than one statement must be atomic even when no unit of work is open.
    const single = scoped.size === 0 && ambient.length <= ROWS_PER_STATEMENT;
    await (single ? write() : router.transaction(write));
  }

  return { recordAuditEvent, recordAuditEvents };
}
