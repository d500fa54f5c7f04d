/**
 * The transactions of a unit of work below the router: the tenant's entry and row-level security
 * setting at each level, and the transactions nested levels open at the outermost one (a tenant
 * entered midway reaches a database the unit had not opened), held until the unit settles them.
 */
import type { Pool } from "./pools.js";
import { UUID } from "../uuid.js";
import { drizzle } from "drizzle-orm/postgres-js";
import type postgres from "postgres";
import type { Database, PublishedTransaction, UnitLevel } from "./unit-of-work.js";

/**
 * The postgres.js client a drizzle transaction runs its statements on (its session's). The router's
 * own statements — entering a tenant, setting it — go there directly: drizzle's query building cost
 * a unit about as much JavaScript as the rest of the router.
 */
function driverOf(tx: Database): postgres.TransactionSql {
  return (tx as unknown as { session: { client: postgres.TransactionSql } }).session.client;
}

export async function setTenant(tx: Database, tenantId: string | null | undefined, readOnly = false): Promise<void> {
  await driverOf(tx).unsafe(
    readOnly
      ? "select set_config('sv.tenant_id', $1, true), set_config('transaction_read_only', 'on', true)"
      : "select set_config('sv.tenant_id', $1, true)",
    [tenantId ?? ""],
  );
}

/**
 * Enters a tenant in the control-plane database (drizzle/0010, 0025): sets `sv.tenant_id`, holds the
 * tenant's write gate (a move waits for the units holding it), and answers where the tenant lives.
 */
export interface TenantEntry {
  database: string;
  state: string;
}

/** The entry functions' arguments: the tenant as set, and as a UUID when it is one (the placements' key). */
const entryArguments = (tenantId: string) => [tenantId, UUID.test(tenantId) ? tenantId : null];

export async function enterTenant(tx: Database, tenantId: string): Promise<TenantEntry | undefined> {
  // A named statement (prepared once per connection): a unit's first, on every unit.
  const rows = await driverOf(tx).unsafe<{ entry: string[] | null }[]>(
    "select platform.tenant_entry($1, $2) as entry",
    entryArguments(tenantId),
    { prepare: true },
  );
  const entry = rows[0]?.entry;
  return entry?.[0] ? { database: entry[0], state: entry[1] ?? "active" } : undefined;
}

/**
 * Enters a tenant on the database that holds its rows when that is not main (drizzle/0024, 0025): the
 * setting, the write gate, read-only while it is being moved out; answers its state there, or
 * undefined when the database does not hold it.
 */
export async function enterResident(tx: Database, tenantId: string): Promise<string | undefined> {
  const rows = await driverOf(tx).unsafe<{ entry: string[] | null }[]>(
    "select platform.enter_resident($1, $2) as entry",
    entryArguments(tenantId),
    { prepare: true },
  );
  return rows[0]?.entry?.[0] ?? undefined;
}

/** A transaction opened on a database the first time the unit of work uses it (see `lazyTransaction`). */
export interface LazyTransaction {
  /** What the unit publishes for the database: `pending` until the first statement opens it. */
  readonly published: PublishedTransaction;
  /** The transaction, once opened. */
  opened(): Database | undefined;
  /** Commits (or rolls back) what was opened; nothing when nothing was. */
  finish(commit: boolean): Promise<void>;
}

/**
 * A drizzle handle whose first statement opens a transaction on `pool` (then `prepare`s it, within
 * `race`'s deadline) and which runs every statement in it: a unit of work that may never use a
 * database does not hold a connection of it, nor send it BEGIN and COMMIT. `db.transaction()` on it
 * is a savepoint in that transaction, as on an open one.
 */
export function lazyTransaction(
  pool: Pool,
  prepare: (tx: Database) => Promise<void>,
  race: <T>(work: Promise<T>) => Promise<T>,
): LazyTransaction {
  let holding: HeldTransaction | undefined;
  let tx: Database | undefined;
  let client: Promise<postgres.TransactionSql> | undefined;
  const open = () =>
    (client ??= (async () => {
      if (published.ended) throw published.ended;
      holding = holdTransaction(pool);
      const opened = await race(holding.tx);
      await race(prepare(opened));
      tx = opened;
      published.pending = false;
      // drizzle's transaction runs its statements on postgres.js's transaction-scoped sql, its session's client.
      return driverOf(opened);
    })());
  // What drizzle's postgres-js session asks of its client: `unsafe` (awaited, or `.values()`) and `begin`.
  const shim = {
    options: { parsers: {}, serializers: {} },
    unsafe: (query: string, params?: unknown[], options?: object) => ({
      values: () => open().then((c) => c.unsafe(query, params as never[], options).values()),
      // biome-ignore lint/suspicious/noThenProperty: drizzle awaits what unsafe returns
      then: <A, B>(ok?: (rows: unknown) => A, ko?: (error: unknown) => B) =>
        open()
          .then((c) => c.unsafe(query, params as never[], options))
          .then(ok, ko),
    }),
    begin: <T>(fn: (sql: postgres.TransactionSql) => Promise<T>) => open().then((c) => c.savepoint(fn)),
  };
  // Built at the unit's first use of the database: most units in a moved tenant never use main.
  let db: Database | undefined;
  const published: PublishedTransaction = {
    get db() {
      return (db ??= drizzle(shim as unknown as postgres.Sql) as Database);
    },
    pending: true,
  };
  return {
    published,
    opened: () => tx,
    async finish(commit) {
      if (!holding) return;
      await client?.catch(() => undefined);
      await holding.finish(commit && tx !== undefined);
    },
  };
}

const ROLLBACK = Symbol("rollback");
export const UNIT_ENDED = new Error("sv-sdk: this unit of work has ended; its transaction can no longer be used");

/** A transaction held open until `finish` says whether it commits. */
interface HeldTransaction {
  tx: Promise<Database>;
  finish(commit: boolean): Promise<void>;
}

function holdTransaction(pool: Pool): HeldTransaction {
  let decide!: (commit: boolean) => void;
  const decision = new Promise<boolean>((resolve) => (decide = resolve));
  let opened!: (tx: Database) => void;
  let failed!: (error: unknown) => void;
  const tx = new Promise<Database>((resolve, reject) => {
    opened = resolve;
    failed = reject;
  });
  const done = pool.db
    .transaction(async (t) => {
      opened(t as unknown as Database);
      if (!(await decision)) throw ROLLBACK;
    })
    .then(
      () => undefined,
      (error: unknown) => {
        if (error === ROLLBACK) return;
        failed(error);
        throw error;
      },
    );
  done.catch(() => undefined); // observed through finish()
  return {
    tx,
    async finish(commit) {
      decide(commit);
      await done;
    },
  };
}

export const held = new WeakMap<UnitLevel, Map<string, HeldTransaction>>();

function rootOf(level: UnitLevel): UnitLevel {
  let root = level;
  while (root.parent) root = root.parent;
  return root;
}

/** The outermost level's transaction on `database`, opened on first use. */
export function joinAtRoot(level: UnitLevel, database: string, pool: (database: string) => Pool): Promise<Database> {
  const root = rootOf(level);
  let transactions = held.get(root);
  if (!transactions) held.set(root, (transactions = new Map()));
  let transaction = transactions.get(database);
  if (!transaction) transactions.set(database, (transaction = holdTransaction(pool(database))));
  return transaction.tx;
}

/**
 * Rolls back, without waiting, what nested levels opened at the outermost level when it failed
 * before settling them (its deadline passed while one of them was still opening).
 */
export function abandonJoined(root: UnitLevel): void {
  const transactions = held.get(root);
  if (!transactions) return;
  held.delete(root);
  for (const transaction of transactions.values()) transaction.finish(false).catch(() => undefined);
}

/** Commits (or rolls back) what nested levels opened at the outermost level; the first failure is thrown. */
export async function settleJoined(root: UnitLevel, commit: boolean): Promise<void> {
  const transactions = held.get(root);
  if (!transactions) return;
  held.delete(root);
  let failure: unknown;
  for (const transaction of transactions.values()) {
    try {
      await transaction.finish(commit && failure === undefined);
    } catch (error) {
      failure ??= error;
    }
  }
  if (failure !== undefined) throw failure;
}
