/**
 * What a module holds instead of a database connection: a drizzle handle that resolves, on every
 * property access, to the transaction open for its database in the ambient unit of work, or to the
 * database's pool when none is (src/db/router.ts hands them out).
 */
import type { Pool } from "./pools.js";
import { ambientTransaction, type Database } from "./unit-of-work.js";

/**
 * A handle that forwards every property to the ambient transaction of the database `resolve()`
 * names at that moment, or to that database's pool.
 */
export function ambientHandle(
  resolve: () => string,
  pool: (database: string) => Pool,
  transaction: <T>(fn: () => Promise<T>) => Promise<T>,
): Database {
  return new Proxy({} as Database, {
    get(_target, property) {
      if (property === "transaction") {
        // Nested work (a library's own transactions included) becomes a savepoint of the unit of work,
        // and the savepoint is published so module calls made inside it join it too.
        return <T>(fn: (tx: Database) => Promise<T>) => transaction(() => fn(ambientTransaction(resolve())!));
      }
      const database = resolve();
      const current = ambientTransaction(database) ?? pool(database).db;
      const value = Reflect.get(current, property, current);
      return typeof value === "function" ? value.bind(current) : value;
    },
  });
}
