/**
 * Reading the trail: filtered pages newest first with a keyset cursor, and a streaming export that
 * never holds the result in memory. Every read runs with a tenant selected (`sv.tenant_id`), so
 * row-level security confines it: a tenant id reads that tenant's events, `null` the platform's own
 * events, `"*"` every tenant's (for holders of a global permission).
 */
import { sql, type SQL } from "drizzle-orm";
import type { Router } from "../../db/router.js";
import { currentContext } from "../../db/unit-of-work.js";
import type { ActorType } from "./schema.js";
import { AuditErrors } from "./errors.js";

export interface AuditFilters {
  /** Whose events: a tenant id, `null` (platform events) or `"*"` (all). Default: the ambient tenant. */
  tenantId?: string | null;
  actorType?: ActorType;
  actorId?: string;
  /** Action prefix: `role.` matches `role.created`, `role.assigned`, ... */
  action?: string;
  targetType?: string;
  targetId?: string;
  /** Inclusive lower bound of `occurredAt`. */
  from?: Date;
  /** Exclusive upper bound of `occurredAt`. */
  to?: Date;
  /** Page size for queryEvents, 1..200 (default 50). */
  limit?: number;
}

export interface AuditEvent {
  id: string;
  /** ISO 8601, UTC, microseconds. */
  occurredAt: string;
  tenantId: string | null;
  actor: { type: ActorType; id: string | null };
  action: string;
  target: { type: string | null; id: string | null } | null;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  metadata: Record<string, unknown> | null;
  changes: { before?: unknown; after?: unknown } | null;
}

export interface AuditPage {
  events: AuditEvent[];
  /** Pass it back as `cursor` for the next (older) page; null on the last page. */
  nextCursor: string | null;
}

export type ExportFormat = "ndjson" | "csv";

type EventRow = {
  id: string;
  occurred_at: string;
  tenant_id: string | null;
  actor_type: ActorType;
  actor_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  metadata: Record<string, unknown> | null;
  changes: { before?: unknown; after?: unknown } | null;
};

const COLUMNS = `id::text as id, to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as occurred_at,
  tenant_id, actor_type, actor_id, action, target_type, target_id, ip, user_agent, request_id, metadata, changes`;
const ISO_MICROS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const EXPORT_BATCH = 500;

function toEvent(row: EventRow): AuditEvent {
  return {
    id: row.id,
    occurredAt: row.occurred_at,
    tenantId: row.tenant_id,
    actor: { type: row.actor_type, id: row.actor_id },
    action: row.action,
    target: row.target_type === null && row.target_id === null ? null : { type: row.target_type, id: row.target_id },
    ip: row.ip,
    userAgent: row.user_agent,
    requestId: row.request_id,
    metadata: row.metadata,
    changes: row.changes,
  };
}

export function encodeCursor(event: Pick<AuditEvent, "occurredAt" | "id">): string {
  return Buffer.from(JSON.stringify([event.occurredAt, event.id])).toString("base64url");
}

function decodeCursor(cursor: string): { occurredAt: string; id: string } {
  try {
    const [occurredAt, id] = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown[];
    if (typeof occurredAt === "string" && ISO_MICROS.test(occurredAt) && typeof id === "string" && /^\d{1,19}$/.test(id)) {
      return { occurredAt, id };
    }
  } catch {
    // falls through to the error below
  }
  throw AuditErrors.INVALID_CURSOR();
}

/** `like` pattern for a literal prefix. */
const prefixPattern = (prefix: string) => `${prefix.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;

/** The filter as a drizzle SQL condition (queries through the unit of work). */
function where(filters: AuditFilters, cursor?: { occurredAt: string; id: string }): SQL {
  const parts: SQL[] = [sql`true`];
  if (filters.actorType) parts.push(sql`actor_type = ${filters.actorType}`);
  if (filters.actorId) parts.push(sql`actor_id = ${filters.actorId}`);
  if (filters.action) parts.push(sql`action like ${prefixPattern(filters.action)}`);
  if (filters.targetType) parts.push(sql`target_type = ${filters.targetType}`);
  if (filters.targetId) parts.push(sql`target_id = ${filters.targetId}`);
  if (filters.from) parts.push(sql`occurred_at >= ${filters.from.toISOString()}::timestamptz`);
  if (filters.to) parts.push(sql`occurred_at < ${filters.to.toISOString()}::timestamptz`);
  if (cursor) parts.push(sql`(occurred_at, id) < (${cursor.occurredAt}::timestamptz, ${cursor.id}::bigint)`);
  return sql.join(parts, sql` and `);
}

/** The same filter as text with positional parameters (the export's own connection). */
function whereText(filters: AuditFilters): { text: string; params: string[] } {
  const params: string[] = [];
  const parts = ["true"];
  const add = (condition: (p: string) => string, value: string) => {
    params.push(value);
    parts.push(condition(`$${params.length}`));
  };
  if (filters.actorType) add((p) => `actor_type = ${p}`, filters.actorType);
  if (filters.actorId) add((p) => `actor_id = ${p}`, filters.actorId);
  if (filters.action) add((p) => `action like ${p}`, prefixPattern(filters.action));
  if (filters.targetType) add((p) => `target_type = ${p}`, filters.targetType);
  if (filters.targetId) add((p) => `target_id = ${p}`, filters.targetId);
  if (filters.from) add((p) => `occurred_at >= ${p}::timestamptz`, filters.from.toISOString());
  if (filters.to) add((p) => `occurred_at < ${p}::timestamptz`, filters.to.toISOString());
  return { text: parts.join(" and "), params };
}

const CSV_COLUMNS = [
  "id", "occurred_at", "tenant_id", "actor_type", "actor_id", "action", "target_type", "target_id",
  "ip", "user_agent", "request_id", "metadata", "changes",
] as const;

/** One CSV cell: quoted when needed, and defused when a spreadsheet would read it as a formula. */
function csvCell(value: unknown): string {
  if (value === null || value === undefined) return "";
  let text = typeof value === "string" ? value : JSON.stringify(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function csvLine(row: EventRow): string {
  return `${CSV_COLUMNS.map((c) => csvCell(row[c])).join(",")}\r\n`;
}

export function createAuditQueries(router: Router) {
  const scopeOf = (filters: AuditFilters) => {
    const scope = filters.tenantId !== undefined ? filters.tenantId : (currentContext().tenantId ?? null);
    return scope;
  };

  /**
   * One page of events, newest first. Pass `nextCursor` back for the next page; new events written
   * meanwhile never shift or repeat rows across pages (keyset on occurred_at, id).
   *
   * @example
   * const page = await sdk.audit.queryEvents({ tenantId, action: "role.", limit: 20 });
   * const older = await sdk.audit.queryEvents({ tenantId, action: "role." }, page.nextCursor);
   */
  async function queryEvents(filters: AuditFilters = {}, cursor?: string | null): Promise<AuditPage> {
    const limit = Math.min(Math.max(filters.limit ?? 50, 1), 200);
    const after = cursor ? decodeCursor(cursor) : undefined;
    const rows = await router.withTenant(scopeOf(filters), () =>
      router.db("audit").execute<EventRow>(sql`
        select ${sql.raw(COLUMNS)} from audit.audit_logs
        where ${where(filters, after)}
        order by audit_logs.occurred_at desc, audit_logs.id desc
        limit ${limit + 1}`),
    );
    const events = [...rows].slice(0, limit).map(toEvent);
    const nextCursor = rows.length > limit ? encodeCursor(events[events.length - 1]!) : null;
    return { events, nextCursor };
  }

  /**
   * Every matching event, newest first, as a stream of NDJSON lines or CSV rows. Rows are read with a
   * server-side cursor in batches of 500, each read only when the consumer asks for more, so memory
   * stays flat however large the export. It reads committed rows on a connection of its own (it
   * outlives the request that started it).
   *
   * @example
   * return new Response(sdk.audit.exportEvents({ tenantId }, "csv"), { headers: { "content-type": "text/csv" } });
   */
  function exportEvents(filters: AuditFilters = {}, format: ExportFormat = "ndjson"): ReadableStream<Uint8Array> {
    const scope = scopeOf(filters);
    const encoder = new TextEncoder();
    const pages = exportPages(scope, filters);
    let headerSent = false;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (format === "csv" && !headerSent) {
          headerSent = true;
          controller.enqueue(encoder.encode(`${CSV_COLUMNS.join(",")}\r\n`));
          return;
        }
        const next = await pages.next();
        if (next.done) {
          controller.close();
          return;
        }
        const text =
          format === "csv" ? next.value.map(csvLine).join("") : next.value.map((r) => `${JSON.stringify(toEvent(r))}\n`).join("");
        controller.enqueue(encoder.encode(text));
      },
      async cancel() {
        await pages.return(undefined);
      },
    });
  }

  async function* exportPages(scope: string | null, filters: AuditFilters): AsyncGenerator<EventRow[], void, undefined> {
    const connection = await router.pool(router.databaseOf("audit")).sql.reserve();
    let finished = false;
    try {
      await connection`begin isolation level repeatable read read only`;
      await connection`select set_config('sv.tenant_id', ${scope ?? ""}, true)`;
      const { text, params } = whereText(filters);
      const query = connection.unsafe<EventRow[]>(
        `select ${COLUMNS} from audit.audit_logs where ${text} order by audit_logs.occurred_at desc, audit_logs.id desc`,
        params,
      );
      for await (const rows of query.cursor(EXPORT_BATCH)) yield rows;
      await connection`commit`;
      finished = true;
    } finally {
      if (!finished) await connection`rollback`.catch(() => undefined);
      connection.release();
    }
  }

  return { queryEvents, exportEvents };
}
