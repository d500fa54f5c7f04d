/**
 * The unit of work: an AsyncLocalStorage context carrying the request id, actor, tenant and the open
 * transaction of each database. Module code never receives a transaction argument; the router's
 * handles resolve to the ambient transaction on every property access.
 */
import { sql } from "drizzle-orm";
import { ContextSlot } from "./context-storage.js";
import type { Deadline } from "./deadline.js";
import type { PostgresJsDatabase } from "drizzle-orm/postgres-js";

export type Actor =
  | { type: "user"; id: string; impersonatedBy?: string }
  | { type: "api_key"; id: string }
  | { type: "service"; id: string }
  | { type: "webhook"; id: string }
  | { type: "system"; id?: string };

export interface RequestContext {
  requestId?: string;
  actor?: Actor;
  /** The tenant rows are scoped to; `"*"` is the platform scope (every tenant), for system work. */
  tenantId?: string | null;
  ip?: string;
  userAgent?: string;
  /** When the work of this context must be done (a request's deadline); units of work end by it too. */
  deadline?: Deadline;
  /**
   * Shared by every context nested in a request's (one object, carried by reference): a database
   * failure (down, frozen, busy) noted here by a library that reports it as its own 500 makes the
   * HTTP layer answer 503 with Retry-After instead.
   */
  incidents?: { unavailable?: Error };
  /** Where a tenant created in this context goes (`POST /api/v1/tenants`; src/db/tenant-placement.ts). */
  requestedPlacement?: { region?: string; database?: string };
}

/** Notes, for the request being served, that a database failure made its work fail. */
export function noteUnavailable(error: Error): void {
  const incidents = storage.getStore()?.context.incidents;
  if (incidents) incidents.unavailable ??= error;
}

/** A drizzle handle: the pool, or a transaction on it. Both answer the same query API. */
export type Database = PostgresJsDatabase<Record<string, never>>;

/**
 * A transaction published to the work inside it. `ended` is set when its level ends (committed,
 * rolled back, or abandoned at its deadline): work still running after that — the rest of a body
 * that outlived its deadline — must not reach the connection, which is back in the pool and may
 * already carry someone else's transaction.
 */
export interface PublishedTransaction {
  readonly db: Database;
  ended?: Error;
  /** Set while a transaction opened on first use (`lazyTransaction`) has not been: no connection held yet. */
  pending?: boolean;
}

/** One `transaction()` call: the outermost one, or a savepoint level nested in it. */
export interface UnitLevel {
  parent?: UnitLevel;
  /** Work to run once this level has rolled back (see `onRollback`). */
  afterRollback: (() => Promise<void>)[];
  /** Set by `markRollbackOnly`: the level must not commit even if its function resolves. */
  failure?: unknown;
  /** The `sv.tenant_id` this level's transaction runs with (null: unset). */
  tenant: string | null;
  /** When the whole unit must be done (the outermost level's, shared by the levels inside it). */
  deadline: Deadline;
  /**
   * The database holding the level's tenant's rows when the tenant has a placement of its own
   * (`platform.tenant_placements`, read when the level enters the tenant); unset: each module's database.
   */
  tenantDatabase?: string;
  /**
   * Why this unit may write to two databases (`declareCrossDatabaseUnit`): set on the outermost
   * level only; the test check (`assertOneDatabaseWritten`) lets such a unit through.
   */
  crossDatabase?: string;
  /** Tenants this unit placed (`notePlacement`), by id: not committed, so not in the router's memory yet. */
  placed?: Map<string, string>;
}

interface Store {
  context: RequestContext;
  transactions: ReadonlyMap<string, PublishedTransaction>;
  level?: UnitLevel;
  /** Tenant-scoped modules read and write this database (workers visiting each database in turn). */
  pinned?: string;
}

const storage = new ContextSlot<Store>("sv-sdk unit of work");
/** A scope with no open transaction (shared: a store's map is never changed, only replaced). */
const NO_TRANSACTIONS: ReadonlyMap<string, PublishedTransaction> = new Map();

export function currentStore(): Store | undefined {
  return storage.getStore();
}

/** The ambient request context (empty outside any). */
export function currentContext(): RequestContext {
  return storage.getStore()?.context ?? {};
}

/** The open transaction of `database` in this unit of work; throws when the unit has ended under the caller. */
export function ambientTransaction(database: string): Database | undefined {
  const published = storage.getStore()?.transactions.get(database);
  if (published?.ended) throw published.ended;
  return published?.db;
}

/** Whether the current unit of work holds a connection of `database` (an open transaction on it). */
export function holdsTransaction(database: string): boolean {
  const published = storage.getStore()?.transactions.get(database);
  return published !== undefined && published.ended === undefined && !published.pending;
}

/** Runs `fn` with `context` merged over the current one; open transactions stay joined. */
export function runWithContext<T>(context: RequestContext, fn: () => T): T {
  const store = storage.getStore();
  return storage.run(
    { ...store, context: { ...store?.context, ...context }, transactions: store?.transactions ?? NO_TRANSACTIONS },
    fn,
  );
}

/**
 * Fills in the current request's context (its actor and tenant, once the session is known) without
 * opening a new scope. Only for the request's own context, set up by `runWithContext` at its start.
 */
export function updateContext(update: RequestContext): void {
  const store = storage.getStore();
  if (!store) throw new Error("updateContext needs a request context (runWithContext)");
  Object.assign(store.context, update);
}

/** Runs `fn` with `tx` published as the open transaction of `database`. */
export function runWithTransaction<T>(database: string, tx: PublishedTransaction, fn: () => T): T {
  const store = storage.getStore();
  const transactions = new Map(store?.transactions);
  transactions.set(database, tx);
  return storage.run({ ...store, context: store?.context ?? {}, transactions }, fn);
}

/** Runs `fn` as a new unit level nested in the current one. */
export function runInLevel<T>(level: UnitLevel, fn: () => T): T {
  const store = storage.getStore();
  return storage.run(
    { ...store, context: store?.context ?? {}, transactions: store?.transactions ?? NO_TRANSACTIONS, level },
    fn,
  );
}

/** Runs `fn` with the tenant-scoped modules' handles pointed at `database` (see `Router.onDatabase`). */
export function runPinned<T>(database: string, fn: () => T): T {
  const store = storage.getStore();
  return storage.run(
    { ...store, context: store?.context ?? {}, transactions: store?.transactions ?? NO_TRANSACTIONS, pinned: database },
    fn,
  );
}

export function currentLevel(): UnitLevel | undefined {
  return storage.getStore()?.level;
}

/**
 * Registers work that must happen even though the current unit of work rolls back — a refused
 * request is rolled back, but the record that it was refused must remain. It runs after the rollback, in the
 * enclosing unit if there is one, else in a new one. Outside any unit it runs at once.
 */
export async function onRollback(fn: () => Promise<void>): Promise<void> {
  const level = currentLevel();
  if (!level) return fn();
  level.afterRollback.push(fn);
}

/**
 * Marks the whole unit of work as failed: it rolls back even if its function resolves. For failures
 * inside callbacks whose caller swallows errors (a library that logs its hooks' errors and carries on).
 */
export function markRollbackOnly(error: unknown): void {
  for (let level = currentLevel(); level; level = level.parent) level.failure ??= error;
}

/**
 * Declares that the current unit of work writes to two databases on purpose, and why a failure
 * between its commits leaves nothing anyone can see. The one such unit: a tenant created on a
 * database of its own (its rows commit there first; main's commit, last, is what makes the tenant
 * exist). Every other unit goes through the outbox.
 */
export function declareCrossDatabaseUnit(reason: string): void {
  const root = rootLevel();
  if (root) root.crossDatabase = reason;
}

/** The outermost level of the current unit of work, if one is open. */
function rootLevel(): UnitLevel | undefined {
  let level = currentLevel();
  while (level?.parent) level = level.parent;
  return level;
}

/**
 * Records that the current unit of work placed `tenantId` on `database`: until it commits, the
 * router's placements (loaded from committed rows) do not know it, and work later in the same unit
 * asks where the tenant lives (`router.placementOf`).
 */
export function notePlacement(tenantId: string, database: string): void {
  const root = rootLevel();
  if (root) (root.placed ??= new Map()).set(tenantId, database);
}

/** Where the current unit of work placed `tenantId`, if it did. */
export function placedInUnit(tenantId: string): string | undefined {
  return rootLevel()?.placed?.get(tenantId);
}

/**
 * Thrown (in tests) when a unit of work wrote to two databases: its commits would be two, and a
 * failure between them would keep one half. The cross-database part belongs in the outbox.
 */
export class CrossDatabaseWriteError extends Error {
  override readonly name = "CrossDatabaseWriteError";
}

/** Whether the transaction has written (or locked) a row: PostgreSQL has given it an id. */
export async function wroteIn(tx: Database): Promise<boolean> {
  const [row] = await tx.execute<{ wrote: boolean }>(sql`select pg_current_xact_id_if_assigned() is not null as wrote`);
  return row?.wrote === true;
}

/**
 * Refuses a unit of work that wrote to more than one of `transactions` (its open transactions, by
 * database), before anything commits. PostgreSQL gives a transaction an id at its first written or
 * locked row, so `pg_current_xact_id_if_assigned()` says, per database, whether the unit wrote there
 * — whatever wrote it: a module, a library, raw SQL. One round trip per database, so the router
 * asks only when told to (the test SDK options: `environment: "test"`).
 */
export async function assertOneDatabaseWritten(transactions: ReadonlyMap<string, Database>): Promise<void> {
  if (transactions.size < 2) return;
  const answers = await Promise.all(
    [...transactions].map(async ([database, tx]) => ((await wroteIn(tx)) ? [database] : [])),
  );
  const written = answers.flat();
  if (written.length < 2) return;
  throw new CrossDatabaseWriteError(
    `sv-sdk: this unit of work wrote to ${written.map((d) => `'${d}'`).join(" and ")}: it would commit in each ` +
      "separately, and a failure between the commits would keep half of it. Send the part that belongs to the " +
      "other database through the outbox (ModuleContext.insertRows / removeCopies; README, " +
      '"Splitting a schema out honestly").',
  );
}
