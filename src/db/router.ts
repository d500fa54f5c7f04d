/**
 * The router owns one postgres.js pool per database of the topology and hands each module a drizzle
 * handle for the database its schema lives in. The handle resolves, on every property access, to the
 * transaction open in the ambient unit of work, or to the pool when none is. Modules on the same
 * database share one pool.
 */
import { drizzle } from "drizzle-orm/postgres-js";
import { sql as rawSql } from "drizzle-orm";
import postgres from "postgres";
import {
  ambientTransaction,
  currentContext,
  currentLevel,
  runInLevel,
  type UnitLevel,
  runWithContext,
  runWithTransaction,
  type Database,
} from "./unit-of-work.js";
import { databaseOf, MODULES, type DatabaseConfig, type ModuleName, type Topology } from "./topology.js";

/** The role the runtime pool acts as: DML only, not the tables' owner, so row-level security applies. */
export const RUNTIME_ROLE = "sv_app";

export interface Pool {
  name: string;
  sql: postgres.Sql;
  db: Database;
}

export interface RouterOptions {
  /** Connect as the owner instead of `sv_app` (migrations and maintenance only). */
  asOwner?: boolean;
  /** Hook called with every query text (benchmarks and tests count queries with it). */
  onQuery?: (database: string, query: string) => void;
}

export interface Router {
  readonly topology: Topology;
  /** The ambient-transaction-aware handle for a module's database. */
  db(module: ModuleName): Database;
  /** The ambient-transaction-aware handle for a named database (your own tables). */
  database(name?: string): Database;
  /** The raw postgres.js pool of a database (LISTEN/NOTIFY, COPY, benchmarks). */
  pool(database: string): Pool;
  databaseOf(module: ModuleName): string;
  /**
   * Runs `fn` in a unit of work: opens a transaction on every database that hosts a module, or a
   * savepoint in each when one is already open. Commits when `fn` resolves, rolls back when it throws.
   */
  transaction<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * Runs `fn` with rows scoped to `tenantId` (`"*"` for every tenant). Sets `sv.tenant_id` in the open
   * transactions, or opens a unit of work to carry it: row-level security reads it per transaction.
   */
  withTenant<T>(tenantId: string | null, fn: () => Promise<T>): Promise<T>;
  close(timeoutSeconds?: number): Promise<void>;
}

function createPool(name: string, config: DatabaseConfig, options: RouterOptions): Pool {
  const url = options.asOwner ? config.url : (config.appUrl ?? config.url);
  const assumeRole = !options.asOwner && !config.appUrl;
  const sql = postgres(url, {
    max: config.pool.max,
    idle_timeout: config.pool.idleTimeoutSeconds,
    connect_timeout: config.pool.connectTimeoutSeconds,
    onnotice: () => {},
    // A startup parameter is applied by the server as a setting: `role` makes every connection of
    // the pool act as sv_app from its first query, with no extra round trip.
    connection: assumeRole ? { role: RUNTIME_ROLE, application_name: "sv-sdk" } : { application_name: "sv-sdk" },
    debug: options.onQuery ? (_connection, query) => options.onQuery!(name, query) : undefined,
  });
  return { name, sql, db: drizzle(sql) as unknown as Database };
}

async function setTenant(tx: Database, tenantId: string | null | undefined): Promise<void> {
  await tx.execute(rawSql`select set_config('sv.tenant_id', ${tenantId ?? ""}, true)`);
}

/** A handle that forwards every property to the ambient transaction of `database`, or to the pool. */
function ambientHandle(database: string, base: Database, router: Router): Database {
  return new Proxy(base, {
    get(target, property) {
      if (property === "transaction") {
        // Nested work (better-auth's adapter included) becomes a savepoint of the unit of work,
        // and the savepoint is published so module calls made inside it join it too.
        return <T>(fn: (tx: Database) => Promise<T>) =>
          router.transaction(() => fn(ambientTransaction(database)!));
      }
      const current = ambientTransaction(database) ?? target;
      const value = Reflect.get(current, property, current);
      return typeof value === "function" ? value.bind(current) : value;
    },
  });
}

export function createRouter(topology: Topology, options: RouterOptions = {}): Router {
  const pools = new Map<string, Pool>();
  for (const [name, config] of Object.entries(topology.databases)) {
    pools.set(name, createPool(name, config, options));
  }
  // Databases that host at least one module, main first: a unit of work opens a transaction on each.
  const transactional = [...new Set(["main", ...MODULES.map((m) => databaseOf(topology, m))])];
  const handles = new Map<string, Database>();
  const handleFor = (database: string): Database => {
    let handle = handles.get(database);
    if (!handle) {
      handle = ambientHandle(database, pool(database).db, router);
      handles.set(database, handle);
    }
    return handle;
  };

  const pool = (database: string): Pool => {
    const found = pools.get(database);
    if (!found) throw new Error(`The topology has no database named '${database}'`);
    return found;
  };

  const router: Router = {
    topology,
    pool,
    databaseOf: (module) => databaseOf(topology, module),
    db: (module) => handleFor(databaseOf(topology, module)),
    database: (name = "main") => handleFor(name),
    async transaction<T>(fn: () => Promise<T>): Promise<T> {
      const parent = currentLevel();
      // Row-level security reads sv.tenant_id per transaction: each level runs with its context's
      // tenant — a request's savepoint inside an open transaction included — and a savepoint that
      // changed it hands the parent's back when it ends (a rolled-back one reverts it by itself).
      const tenant = currentContext().tenantId ?? null;
      const level: UnitLevel = { parent, afterRollback: [], tenant };
      const inherited = parent?.tenant ?? null;
      const body = async () => {
        const result = await fn();
        if (level.failure !== undefined) throw level.failure;
        return result;
      };
      const open = (index: number): Promise<T> => {
        if (index === transactional.length) return body();
        const database = transactional[index]!;
        const outer = ambientTransaction(database);
        return (outer ?? pool(database).db).transaction(async (tx) => {
          const joined = tx as unknown as Database;
          const changes = outer ? tenant !== inherited : tenant !== null;
          if (changes) await setTenant(joined, tenant);
          const result = await runWithTransaction(database, joined, () => open(index + 1));
          if (outer && changes) await setTenant(joined, inherited);
          return result;
        });
      };
      try {
        return await runInLevel(level, () => open(0));
      } catch (error) {
        // This level has rolled back; what must outlive it runs now, in the enclosing level.
        for (const work of level.afterRollback) await router.transaction(work);
        throw error;
      }
    },
    withTenant<T>(tenantId: string | null, fn: () => Promise<T>): Promise<T> {
      // A unit of work (or a savepoint of the open one) that carries the tenant.
      return runWithContext({ tenantId }, () => router.transaction(fn));
    },
    async close(timeoutSeconds = 5) {
      await Promise.all([...pools.values()].map((p) => p.sql.end({ timeout: timeoutSeconds })));
    },
  };
  return router;
}
