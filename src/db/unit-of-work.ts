/**
 * The unit of work: an AsyncLocalStorage context carrying the request id, actor, tenant and the open
 * transaction of each database. Module code never receives a transaction argument; the router's
 * handles resolve to the ambient transaction on every property access.
 */
import { AsyncLocalStorage } from "node:async_hooks";
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
}

/** A drizzle handle: the pool, or a transaction on it. Both answer the same query API. */
export type Database = PostgresJsDatabase<Record<string, never>>;

interface Store {
  context: RequestContext;
  transactions: ReadonlyMap<string, Database>;
}

const storage = new AsyncLocalStorage<Store>();

export function currentStore(): Store | undefined {
  return storage.getStore();
}

/** The ambient request context (empty outside any). */
export function currentContext(): RequestContext {
  return storage.getStore()?.context ?? {};
}

export function ambientTransaction(database: string): Database | undefined {
  return storage.getStore()?.transactions.get(database);
}

/** Runs `fn` with `context` merged over the current one; open transactions stay joined. */
export function runWithContext<T>(context: RequestContext, fn: () => T): T {
  const store = storage.getStore();
  return storage.run(
    { context: { ...store?.context, ...context }, transactions: store?.transactions ?? new Map() },
    fn,
  );
}

/** Runs `fn` with `tx` published as the open transaction of `database`. */
export function runWithTransaction<T>(database: string, tx: Database, fn: () => T): T {
  const store = storage.getStore();
  const transactions = new Map(store?.transactions);
  transactions.set(database, tx);
  return storage.run({ context: store?.context ?? {}, transactions }, fn);
}
