/**
 * A test-only route mounted on the real app, the way an SDK user adds routes of their own: a
 * mutation that writes a row of its own table and its audit event, then holds its connection in
 * `pg_sleep` for as long as the scenario asks. Every unit of work it runs is the app's (the route
 * sits under `/api/*`, so the mutation middleware wraps it), so a scenario can catch a transaction
 * mid-flight (terminate its backend, fill the pool with it) and then check that the row and its
 * audit row were written together or not at all.
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import type postgres from "postgres";
import type { App } from "../../../src/app.js";
import type { Sdk } from "../../../src/index.js";

/** Run once in the golden database, as the owner (an SDK user's own migration). */
export const FAULT_TABLES_SQL = `
  create schema if not exists faults;
  create table if not exists faults.writes (
    id uuid primary key,
    marker text not null,
    created_at timestamptz not null default now()
  );
  grant usage on schema faults to sv_app;
  grant select, insert on faults.writes to sv_app;
`;

export const FAULT_WRITE_PATH = "/api/faults/write";
export const FAULT_AUDIT_ACTION = "fault.written";

export interface FaultWriteBody {
  /** Names the request: its row, its audit event and its sleeping statement (`/* fault:<marker> *\/`). */
  marker: string;
  /** Seconds of pg_sleep after the writes, one statement each (each must stay under statement_timeout). */
  sleeps?: number[];
}

/** Mounts `POST /api/faults/write` (answers 201 `{ id }`). Call before the first request. */
export function mountFaultRoutes(app: App, sdk: Sdk): void {
  app.post(FAULT_WRITE_PATH, async (c) => {
    const { marker, sleeps = [] } = (await c.req.json()) as FaultWriteBody;
    if (!/^[\w-]{1,80}$/.test(marker)) return c.json({ error: "marker: letters, digits, '_' and '-'" }, 400);
    const id = randomUUID();
    await sdk.db().execute(sql`insert into faults.writes (id, marker) values (${id}, ${marker})`);
    await sdk.audit.recordAuditEvent({
      action: FAULT_AUDIT_ACTION,
      target: { type: "fault_write", id },
      metadata: { marker },
    });
    for (const seconds of sleeps) {
      // The marker in a comment lets the scenario find this backend in pg_stat_activity.
      await sdk.db().execute(sql`select pg_sleep(${seconds}) ${sql.raw(`/* fault:${marker} */`)}`);
    }
    return c.json({ id }, 201);
  });
}

export interface WrittenPairs {
  /** Markers whose row and audit row both committed. */
  committed: Set<string>;
  /** Markers with one of the two only: a half-committed unit of work. */
  partial: string[];
}

/**
 * What the fault route committed for markers starting with `prefix`, read as the owner: each row
 * with its audit event, or neither.
 */
export async function writtenPairs(owner: postgres.Sql, prefix: string): Promise<WrittenPairs> {
  const rows = await owner<{ marker: string; row_id: string | null; audit_id: string | null }[]>`
    with w as (select id::text as id, marker from faults.writes where marker like ${`${prefix}%`}),
         a as (select target_id as id, metadata->>'marker' as marker from audit.audit_logs
               where action = ${FAULT_AUDIT_ACTION} and metadata->>'marker' like ${`${prefix}%`})
    select coalesce(w.marker, a.marker) as marker, w.id as row_id, a.id as audit_id
    from w full join a on a.id = w.id`;
  const committed = new Set<string>();
  const partial: string[] = [];
  for (const row of rows) {
    if (row.row_id && row.audit_id) committed.add(row.marker);
    else partial.push(`${row.marker} (${row.row_id ? "row without its audit event" : "audit event without its row"})`);
  }
  return { committed, partial };
}
