/**
 * Reading the trail: filtered pages newest first with a keyset cursor, and a streaming export that
 * never holds the result in memory. Every read runs with a tenant selected (`sv.tenant_id`), so
 * row-level security confines it: a tenant id reads that tenant's events, `null` the platform's own
 * events, `"*"` every tenant's (for holders of a global permission).
 *
 * A tenant's trail can span databases: events stay sealed where they were written, and a tenant
 * moved to a database of its own (`sv-sdk tenant:move`) writes its new events there. So every read
 * visits every database of the topology and merges the results newest first; with one database that
 * is the single query it always was. Event ids are per database: the order (and the cursor) breaks
 * ties between databases by the database's position in `router.databases()`.
 */
import { sql, type SQL } from "drizzle-orm";
import type { Router } from "../../db/router.js";
import { currentContext, runWithContext } from "../../db/unit-of-work.js";
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

interface Cursor {
  occurredAt: string;
  id: string;
  /** The database of the event the page ended on (only when the topology has several). */
  database?: string;
}

export function encodeCursor(event: Pick<AuditEvent, "occurredAt" | "id">, database?: string): string {
  const key = database === undefined ? [event.occurredAt, event.id] : [event.occurredAt, event.id, database];
  return Buffer.from(JSON.stringify(key)).toString("base64url");
}

const MAX_BIGINT = 2n ** 63n - 1n;

/** A date and time that exists (no month 13, no hour 25): the calendar round-trips it. */
function isRealInstant(iso: string): boolean {
  const millis = Date.parse(iso);
  return Number.isFinite(millis) && new Date(millis).toISOString().slice(0, 19) === iso.slice(0, 19);
}

function decodeCursor(cursor: string): Cursor {
  try {
    const [occurredAt, id, database, ...rest] = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown[];
    if (
      typeof occurredAt === "string" && ISO_MICROS.test(occurredAt) && isRealInstant(occurredAt) &&
      typeof id === "string" && /^\d{1,19}$/.test(id) && BigInt(id) <= MAX_BIGINT &&
      (database === undefined || typeof database === "string") && rest.length === 0
    ) {
      return database === undefined ? { occurredAt, id } : { occurredAt, id, database };
    }
  } catch {
    // falls through to the error below
  }
  throw AuditErrors.INVALID_CURSOR();
}

/** Row of one database, with that database's position in `router.databases()`. */
interface Located {
  row: EventRow;
  rank: number;
}

/** Newest first: occurred_at, then id, then the database's position (both descending). */
function newestFirst(a: Located, b: Located): number {
  if (a.row.occurred_at !== b.row.occurred_at) return a.row.occurred_at < b.row.occurred_at ? 1 : -1;
  const [x, y] = [BigInt(a.row.id), BigInt(b.row.id)];
  if (x !== y) return x < y ? 1 : -1;
  return b.rank - a.rank;
}

/** `like` pattern for a literal prefix. */
const prefixPattern = (prefix: string) => `${prefix.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;

/**
 * The filter as a drizzle SQL condition. The scope is stated as well as enforced by row-level
 * security: the policy compares text with a setting, which no index can serve, so without it a
 * page read every partition and sorted (15× slower at 1M rows); with it (tenant_id, occurred_at,
 * id) serves the keyset.
 */
function where(scope: string | null, filters: AuditFilters, cursor?: Cursor, inclusive = false): SQL {
  const parts: SQL[] = [scope === "*" ? sql`true` : scope === null ? sql`tenant_id is null` : sql`tenant_id = ${scope}::uuid`];
  if (filters.actorType) parts.push(sql`actor_type = ${filters.actorType}`);
  if (filters.actorId) parts.push(sql`actor_id = ${filters.actorId}`);
  if (filters.action) parts.push(sql`action like ${prefixPattern(filters.action)}`);
  if (filters.targetType) parts.push(sql`target_type = ${filters.targetType}`);
  if (filters.targetId) parts.push(sql`target_id = ${filters.targetId}`);
  if (filters.from) parts.push(sql`occurred_at >= ${filters.from.toISOString()}::timestamptz`);
  if (filters.to) parts.push(sql`occurred_at < ${filters.to.toISOString()}::timestamptz`);
  if (cursor) {
    const key = sql`(${cursor.occurredAt}::timestamptz, ${cursor.id}::bigint)`;
    parts.push(inclusive ? sql`(occurred_at, id) <= ${key}` : sql`(occurred_at, id) < ${key}`);
  }
  return sql.join(parts, sql` and `);
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
    const databases = router.databases();
    const afterRank = after?.database === undefined ? databases.length : databases.indexOf(after.database);
    if (afterRank < 0) throw AuditErrors.INVALID_CURSOR();
    const scope = scopeOf(filters);
    // Each database's newest `limit + 1` after the cursor: the page is among their union.
    const rows: Located[] = [];
    for (const [rank, database] of databases.entries()) {
      // A row with the cursor's very (occurred_at, id) in a database listed before the cursor's
      // sorts after the cursor's row: it belongs to the next pages.
      const inclusive = rank < afterRank && after?.database !== undefined;
      const found = await router.onDatabase(database, () =>
        router.withTenant(scope, () =>
          router.db("audit").execute<EventRow>(sql`
            select ${sql.raw(COLUMNS)} from audit.audit_logs
            where ${where(scope, filters, after, inclusive)}
            order by audit_logs.occurred_at desc, audit_logs.id desc
            limit ${limit + 1}`),
        ),
      );
      for (const row of found) rows.push({ row, rank });
    }
    if (databases.length > 1) rows.sort(newestFirst);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    const nextCursor =
      rows.length > limit && last ? encodeCursor(toEvent(last.row), databases.length > 1 ? databases[last.rank] : undefined) : null;
    return { events: page.map((r) => toEvent(r.row)), nextCursor };
  }

  /**
   * Every matching event, newest first, as a stream of NDJSON lines or CSV rows. Rows are read in
   * keyset pages of 500, each read only when the consumer asks for more, so memory stays flat however
   * large the export, and a slow reader holds no connection. Every database's rows are merged newest
   * first.
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

  /** Every database's rows merged newest first, in batches of EXPORT_BATCH. */
  async function* exportPages(scope: string | null, filters: AuditFilters): AsyncGenerator<EventRow[], void, undefined> {
    const databases = router.databases();
    if (databases.length === 1) {
      yield* databasePages(databases[0]!, scope, filters);
      return;
    }
    const sources = databases.map((database, rank) => ({
      rank,
      pages: databasePages(database, scope, filters),
      rows: [] as EventRow[],
      at: 0,
      done: false,
    }));
    type Source = (typeof sources)[number];
    const fill = async (source: Source) => {
      while (!source.done && source.at >= source.rows.length) {
        const next = await source.pages.next();
        if (next.done) source.done = true;
        else [source.rows, source.at] = [next.value, 0];
      }
    };
    const head = (source: Source): Located => ({ row: source.rows[source.at]!, rank: source.rank });
    try {
      await Promise.all(sources.map(fill));
      let batch: EventRow[] = [];
      for (;;) {
        let newest: Source | undefined;
        for (const source of sources) {
          if (source.at < source.rows.length && (!newest || newestFirst(head(source), head(newest)) < 0)) newest = source;
        }
        if (!newest) break;
        batch.push(newest.rows[newest.at++]!);
        await fill(newest);
        if (batch.length === EXPORT_BATCH) {
          yield batch;
          batch = [];
        }
      }
      if (batch.length > 0) yield batch;
    } finally {
      await Promise.all(sources.map((source) => source.pages.return(undefined)));
    }
  }

  /**
   * One database's matching rows, newest first, in keyset pages of EXPORT_BATCH: each page is one
   * short query, so an export holds no connection (and no transaction) while its client reads
   * slowly. Events committed while an export runs may or may not appear in it.
   */
  async function* databasePages(database: string, scope: string | null, filters: AuditFilters): AsyncGenerator<EventRow[], void, undefined> {
    let after: Cursor | undefined;
    for (;;) {
      // The export outlives its request: pages are not bound to the request's deadline.
      const rows = await runWithContext({ deadline: undefined }, () =>
        router.onDatabase(database, () =>
          router.withTenant(scope, () =>
            router.db("audit").execute<EventRow>(sql`
              select ${sql.raw(COLUMNS)} from audit.audit_logs
              where ${where(scope, filters, after)}
              order by audit_logs.occurred_at desc, audit_logs.id desc
              limit ${EXPORT_BATCH}`),
          ),
        ),
      );
      if (rows.length > 0) yield [...rows];
      if (rows.length < EXPORT_BATCH) return;
      const last = rows[rows.length - 1]!;
      after = { occurredAt: last.occurred_at, id: last.id };
    }
  }

  return { queryEvents, exportEvents };
}
