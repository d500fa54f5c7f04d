/**
 * Reading the trail: filtered pages newest first with a keyset cursor, and a streaming export that
 * never holds the result in memory. Every read runs with a tenant selected (`sv.tenant_id`), so
 * row-level security confines it: a tenant id reads that tenant's events, `null` the platform's own
 * events, `"*"` every tenant's (for holders of a global permission).
 *
 * A tenant's trail can span databases: events stay sealed where they were written, and a tenant
 * moved to a database of its own (`sv-sdk tenant:move`) writes its new events there. So every read
 * is the platform's merged page (`context.mergedPage`): each place's newest rows after the cursor,
 * merged newest first; with one database that is the single query it always was. Event ids are per
 * database: ties between places are broken by place, inside the opaque cursor.
 *
 * A database that cannot answer (down, frozen) does not fail a read that can do without it: the
 * answer carries what the others hold and names the missing ones (`missingDatabases`) — a platform
 * operator's read of every tenant, or a tenant's read beside a database it may once have lived in.
 * The read fails (503, retry) only when the scope's own database is the one missing: a tenant's
 * current database, or the trail's home for platform-wide scopes.
 */
import { sql, type SQL } from "drizzle-orm";
import type { ModuleContext } from "../../db/module.js";
import { currentContext, runWithContext } from "../../db/unit-of-work.js";
import { CommonErrors } from "../../errors.js";
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
  /**
   * Databases that could not answer (down or not answering): the page holds every other database's
   * events, and those databases' events are missing from it. Absent when every database answered.
   */
  missingDatabases?: string[];
}

/** An export under way: its stream, and the databases its first page could not read. */
export interface AuditExport {
  stream: ReadableStream<Uint8Array>;
  /** As in `AuditPage`; empty when every database answered. */
  missingDatabases: string[];
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

/** Where a row sits in the newest-first order: what a page continues after. */
export type Key = [occurredAt: string, id: string];

const keyOf = (row: EventRow): Key => [row.occurred_at, row.id];

const MAX_BIGINT = 2n ** 63n - 1n;

/** A date and time that exists (no month 13, no hour 25): the calendar round-trips it. */
function isRealInstant(iso: string): boolean {
  const millis = Date.parse(iso);
  return Number.isFinite(millis) && new Date(millis).toISOString().slice(0, 19) === iso.slice(0, 19);
}

/** A key decoded from a client's cursor, checked before it reaches SQL. */
function parseKey(value: unknown): Key {
  if (Array.isArray(value) && value.length === 2) {
    const [occurredAt, id] = value as unknown[];
    if (
      typeof occurredAt === "string" &&
      ISO_MICROS.test(occurredAt) &&
      isRealInstant(occurredAt) &&
      typeof id === "string" &&
      /^\d{1,19}$/.test(id) &&
      BigInt(id) <= MAX_BIGINT
    ) {
      return [occurredAt, id];
    }
  }
  throw AuditErrors.INVALID_CURSOR();
}

/** Newest first: occurred_at, then id (both descending). */
function newestFirst(a: EventRow, b: EventRow): number {
  if (a.occurred_at !== b.occurred_at) return a.occurred_at < b.occurred_at ? 1 : -1;
  const [x, y] = [BigInt(a.id), BigInt(b.id)];
  return x === y ? 0 : x < y ? 1 : -1;
}

/** `like` pattern for a literal prefix. */
const prefixPattern = (prefix: string) => `${prefix.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;

/**
 * The filter as a drizzle SQL condition. The scope is stated as well as enforced by row-level
 * security: the policy compares text with a setting, which no index can serve, so without it a
 * page read every partition and sorted (15× slower at 1M rows); with it (tenant_id, occurred_at,
 * id) serves the keyset.
 */
function where(scope: string | null, filters: AuditFilters, after?: Key, inclusive = false): SQL {
  const parts: SQL[] = [
    scope === "*" ? sql`true` : scope === null ? sql`tenant_id is null` : sql`tenant_id = ${scope}::uuid`,
  ];
  if (filters.actorType) parts.push(sql`actor_type = ${filters.actorType}`);
  if (filters.actorId) parts.push(sql`actor_id = ${filters.actorId}`);
  if (filters.action) parts.push(sql`action like ${prefixPattern(filters.action)}`);
  if (filters.targetType) parts.push(sql`target_type = ${filters.targetType}`);
  if (filters.targetId) parts.push(sql`target_id = ${filters.targetId}`);
  if (filters.from) parts.push(sql`occurred_at >= ${filters.from.toISOString()}::timestamptz`);
  if (filters.to) parts.push(sql`occurred_at < ${filters.to.toISOString()}::timestamptz`);
  if (after) {
    const key = sql`(${after[0]}::timestamptz, ${after[1]}::bigint)`;
    parts.push(inclusive ? sql`(occurred_at, id) <= ${key}` : sql`(occurred_at, id) < ${key}`);
  }
  return sql.join(parts, sql` and `);
}

const CSV_COLUMNS = [
  "id",
  "occurred_at",
  "tenant_id",
  "actor_type",
  "actor_id",
  "action",
  "target_type",
  "target_id",
  "ip",
  "user_agent",
  "request_id",
  "metadata",
  "changes",
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

/**
 * Refuses a filter PostgreSQL cannot compare (a NUL in text) before anything is read: an export has
 * answered 200 by the time its first page is read, so the database's own refusal would cut the
 * connection instead of answering 400.
 */
function checkFilters(filters: AuditFilters): void {
  for (const field of ["actorId", "action", "targetType", "targetId"] as const) {
    if (filters[field]?.includes("\u0000")) {
      throw CommonErrors.VALIDATION_FAILED({ field }, "A value contains a character that cannot be stored (NUL)");
    }
  }
}

/** Whose events a read covers: the filter's tenant, else the ambient one. */
const scopeOf = (filters: AuditFilters): string | null =>
  filters.tenantId !== undefined ? filters.tenantId : (currentContext().tenantId ?? null);

/**
 * Set in a page's transaction before its read. The row-level security policy compares settings the
 * planner cannot see through, so it estimates a tenant's matching rows at one, and reading all of
 * them plus a sort looked as cheap as walking an index: a page of 21 read the tenant's whole trail
 * (10,000 rows at 1M events, 20 ms). With sorting priced out it walks each partition's
 * (tenant_id, occurred_at, id) index newest first and stops after the page (0.2 ms at 1M).
 * Local to the transaction; src/modules/audit/query-plan.test.ts holds the plan to it.
 */
export const PAGE_PLANNER_SETTINGS = sql`select set_config('enable_sort', 'off', true)`;

/** The page read: matching rows after `after`, newest first, at most `limit`. */
export function pageStatement(
  scope: string | null,
  filters: AuditFilters,
  after: Key | undefined,
  limit: number,
  inclusive = false,
): SQL {
  return sql`
      select ${sql.raw(COLUMNS)} from audit.audit_logs
      where ${where(scope, filters, after, inclusive)}
      order by audit_logs.occurred_at desc, audit_logs.id desc
      limit ${limit}`;
}

/** One place's matching rows after `after`, newest first, at most `limit`. */
function readPlace(context: ModuleContext, scope: string | null, filters: AuditFilters) {
  return async (after: Key | undefined, limit: number, inclusive: boolean) => {
    await context.db().execute(PAGE_PLANNER_SETTINGS);
    return context.db().execute<EventRow>(pageStatement(scope, filters, after, limit, inclusive));
  };
}

/**
 * One merged page of every place's rows, newest first, with the places that could not answer. When
 * one could not, the scope's own place is asked directly: it failing is the caller's 503 to retry
 * (the page would miss the scope's own newest events); any other gap is reported, not fatal.
 */
async function mergedRows(
  context: ModuleContext,
  scope: string | null,
  filters: AuditFilters,
  limit: number,
  cursor?: string | null,
) {
  const page = await context.mergedPage({
    read: readPlace(context, scope, filters),
    compare: newestFirst,
    keyOf,
    parseKey,
    limit,
    cursor,
    options: { tenant: scope },
  });
  if (page.missing.length > 0) {
    await context.withTenant(scope, () => context.db().execute(sql`select 1`));
  }
  return page;
}

const namesOf = (missing: { database: string }[]) => [...new Set(missing.map((m) => m.database))];

/**
 * One page of events, newest first. Pass `nextCursor` back for the next page; new events written
 * meanwhile never shift or repeat rows across pages (keyset on occurred_at, id).
 *
 * @example
 * const page = await sdk.audit.queryEvents({ tenantId, action: "role.", limit: 20 });
 * const older = await sdk.audit.queryEvents({ tenantId, action: "role." }, page.nextCursor);
 */
export async function queryEvents(
  context: ModuleContext,
  filters: AuditFilters = {},
  cursor?: string | null,
): Promise<AuditPage> {
  checkFilters(filters);
  const limit = Math.min(Math.max(filters.limit ?? 50, 1), 200);
  const page = await mergedRows(context, scopeOf(filters), filters, limit, cursor);
  const missingDatabases = namesOf(page.missing);
  return {
    events: page.rows.map(toEvent),
    nextCursor: page.nextCursor,
    ...(missingDatabases.length > 0 && { missingDatabases }),
  };
}

/**
 * Every matching event, newest first, as a stream of NDJSON lines or CSV rows. Rows are read in
 * merged pages of 500, each read only when the consumer asks for more, so memory stays flat however
 * large the export, and a slow reader holds no connection (nor a transaction). Events committed
 * while an export runs may or may not appear in it. A database that could not answer is left out
 * (`openExport` says which before the first byte); one that stops answering midway ends the stream
 * with an error rather than leave a silent gap.
 *
 * @example
 * return new Response(sdk.audit.exportEvents({ tenantId }, "csv"), { headers: { "content-type": "text/csv" } });
 */
export function exportEvents(
  context: ModuleContext,
  filters: AuditFilters = {},
  format: ExportFormat = "ndjson",
): ReadableStream<Uint8Array> {
  checkFilters(filters);
  return exportStream(context, scopeOf(filters), filters, format);
}

/**
 * An export whose first page is read before it is returned: a failure of the scope's own database
 * is thrown here (a 503 before any byte is sent), and `missingDatabases` names the databases left
 * out, for a header.
 *
 * @example
 * const { stream, missingDatabases } = await sdk.audit.openExport({ tenantId: "*" }, "ndjson");
 */
export async function openExport(
  context: ModuleContext,
  filters: AuditFilters = {},
  format: ExportFormat = "ndjson",
): Promise<AuditExport> {
  checkFilters(filters);
  const scope = scopeOf(filters);
  const first = await readExportPage(context, scope, filters, undefined);
  return { stream: exportStream(context, scope, filters, format, first), missingDatabases: namesOf(first.missing) };
}

type ExportPage = Awaited<ReturnType<typeof mergedRows>>;

/** The export outlives its request: pages are not bound to the request's deadline. */
const readExportPage = (context: ModuleContext, scope: string | null, filters: AuditFilters, cursor?: string | null) =>
  runWithContext({ deadline: undefined }, () => mergedRows(context, scope, filters, EXPORT_BATCH, cursor));

function exportStream(
  context: ModuleContext,
  scope: string | null,
  filters: AuditFilters,
  format: ExportFormat,
  first?: ExportPage,
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let cursor: string | null | undefined;
  let pending = first;
  let missing: string[] | undefined = first ? namesOf(first.missing) : undefined;
  let headerSent = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (format === "csv" && !headerSent) {
        headerSent = true;
        controller.enqueue(encoder.encode(`${CSV_COLUMNS.join(",")}\r\n`));
        return;
      }
      if (cursor === null) {
        controller.close();
        return;
      }
      const page = pending ?? (await readExportPage(context, scope, filters, cursor));
      pending = undefined;
      const gaps = namesOf(page.missing);
      missing ??= gaps;
      const newGap = gaps.find((database) => !missing!.includes(database));
      if (newGap !== undefined) {
        // Its rows would be silently absent from the rest of the export: end it as failed instead.
        throw CommonErrors.DATABASE_UNAVAILABLE({ database: newGap });
      }
      cursor = page.nextCursor;
      if (page.rows.length === 0) {
        controller.close();
        return;
      }
      const text =
        format === "csv"
          ? page.rows.map(csvLine).join("")
          : page.rows.map((r) => `${JSON.stringify(toEvent(r))}\n`).join("");
      controller.enqueue(encoder.encode(text));
    },
  });
}
