/**
 * Row counts of every table of the auth, permissions, audit and email schemas, in one query, through
 * an owner connection (past row-level security). Partitions are counted through their parent.
 */
import type postgres from "postgres";

export const SCHEMAS = ["auth", "permissions", "audit", "email"];

/**
 * Writes that hostile requests are allowed to cause, each for a stated reason:
 * - `auth.rate_limits`: every request to /api/auth/* is counted by the rate limiter, in the database
 *   and outside the request's transaction (a refused request must still count); one row per client
 *   address and rule.
 * - `audit.audit_logs` with action `user.sign_in_failed`: a refused sign-in is audited, and that event
 *   survives the request's rollback on purpose (README: "failures survive the request's rollback").
 */
export const ALLOWED = {
  "auth.rate_limits": "every /api/auth request is counted by the rate limiter (outside the request's transaction)",
  "audit.audit_logs[user.sign_in_failed]": "refused sign-ins are audited and survive the rollback",
} as const;

export type Counts = Record<string, number>;

export async function rowCounter(owner: postgres.Sql) {
  const tables = await owner<{ name: string }[]>`
    select n.nspname || '.' || c.relname as name
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname in ${owner(SCHEMAS)} and c.relkind in ('r', 'p') and not c.relispartition
     order by 1`;
  const names = tables.map((t) => t.name);
  const columns = [
    ...names.map(
      (name) =>
        `(select count(*) from ${name
          .split(".")
          .map((p) => `"${p}"`)
          .join(".")})::int as "${name}"`,
    ),
    `(select count(*) from audit.audit_logs where action = 'user.sign_in_failed')::int as "audit.audit_logs[user.sign_in_failed]"`,
  ];
  const text = `select ${columns.join(", ")}`;
  return {
    tables: names,
    async count(): Promise<Counts> {
      const [row] = await owner.unsafe<Counts[]>(text);
      return { ...row! };
    },
  };
}

/** Tables whose count changed beyond what ALLOWED explains: `{ table: delta }`. */
export function unexplained(before: Counts, after: Counts): Record<string, number> {
  const out: Record<string, number> = {};
  const signInFailed =
    (after["audit.audit_logs[user.sign_in_failed]"] ?? 0) - (before["audit.audit_logs[user.sign_in_failed]"] ?? 0);
  for (const table of Object.keys(after)) {
    if (table === "audit.audit_logs[user.sign_in_failed]" || table === "auth.rate_limits") continue;
    let delta = (after[table] ?? 0) - (before[table] ?? 0);
    if (table === "audit.audit_logs") delta -= signInFailed;
    if (delta !== 0) out[table] = delta;
  }
  return out;
}

/** Changes in counts, allowed ones included: `{ table: delta }`. */
export function changes(before: Counts, after: Counts): Record<string, number> {
  const out: Record<string, number> = {};
  for (const table of Object.keys(after)) {
    const delta = (after[table] ?? 0) - (before[table] ?? 0);
    if (delta !== 0) out[table] = delta;
  }
  return out;
}
