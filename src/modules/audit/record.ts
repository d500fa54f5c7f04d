/**
 * Recording audit events. The write joins the caller's unit of work, so the event commits with the
 * change it records or not at all; a failed audit insert fails the change (fail closed). The write
 * path is one plain INSERT: no lock, no read of the previous row — tamper evidence comes from the
 * sealer (seal.ts), which works on committed rows only.
 */
import { sql, type SQL } from "drizzle-orm";
import type { ModuleContext } from "../../db/module.js";
import { currentContext, currentLevel, type Actor } from "../../db/unit-of-work.js";
import { AuditErrors } from "./errors.js";
import { redact } from "../../redact.js";

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

const isPlatform = (tenant: string | null) => tenant === null || tenant === "*";

/**
 * The tenant an event must be written under in a unit level of its own (`withTenant`), or undefined
 * when the ambient level will do. Two reasons to enter the event's tenant:
 * - row-level security checks an inserted row's tenant against the transaction's `sv.tenant_id`;
 * - entering a tenant is what routes its rows to the database it lives in: under the platform
 *   scope (`"*"`: dispatcher, webhooks, system jobs) the ambient level writes to the audit
 *   database, so an event of a tenant placed elsewhere would land beside, not with, its trail.
 * Inside an open unit the level is a savepoint of the caller's transactions (a database the caller
 * had not opened joins its outermost unit), so the event commits or rolls back with the work it
 * records — atomically when both are in one database. With one database every tenant lives there
 * and `"*"` passes row-level security: no level is needed.
 */
function ownScope(context: ModuleContext, event: AuditEventInput): string | null | undefined {
  const tenant = event.tenantId !== undefined ? event.tenantId : (currentContext().tenantId ?? null);
  const level = currentLevel();
  // Outside a unit of work there is no transaction to carry sv.tenant_id nor a level to route by.
  if (!level) return isPlatform(tenant) ? undefined : tenant;
  // The level's tenant, not the context's: it is what the open transactions were entered with.
  if (tenant === level.tenant || (isPlatform(tenant) && isPlatform(level.tenant))) return undefined;
  if (level.tenant === "*" && context.spansOneDatabase()) return undefined;
  return tenant;
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
  const insert = () => context.db().execute(sql`${INSERT_HEAD}${rowValues(event)}`);
  const scope = ownScope(context, event);
  await (scope === undefined ? insert() : context.withTenant(scope, insert));
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
  // One level per tenant, not per event: a batch for many tenants costs a savepoint per tenant.
  const ambient: SQL[] = [];
  const scoped = new Map<string | null, SQL[]>();
  for (const event of events) {
    const scope = ownScope(context, event);
    if (scope === undefined) {
      ambient.push(rowValues(event));
      continue;
    }
    const group = scoped.get(scope) ?? [];
    group.push(rowValues(event));
    scoped.set(scope, group);
  }
  const insert = async (rows: SQL[]) => {
    for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
      await context.db().execute(sql`${INSERT_HEAD}${sql.join(rows.slice(i, i + ROWS_PER_STATEMENT), sql`, `)}`);
    }
  };
  const write = async () => {
    if (ambient.length > 0) await insert(ambient);
    for (const [tenantId, rows] of scoped) await context.withTenant(tenantId, () => insert(rows));
  };
  // More than one statement must be atomic even when no unit of work is open.
  const single = scoped.size === 0 && ambient.length <= ROWS_PER_STATEMENT;
  await (single ? write() : context.transaction(write));
}
