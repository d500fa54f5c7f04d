/**
 * One database's pool as the router holds it: a postgres.js client behind its gate (acquire
 * timeout, no re-entry from a unit holding one of its connections), a drizzle handle on it, and the
 * database's health, probed on a connection of its own.
 */
import { drizzle } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { createDatabaseHealth, type DatabaseHealth, type DatabaseHealthStatus } from "./health.js";
import { createPoolGate, gatedClient, type PoolGate } from "./pool-gate.js";
import type { DatabaseConfig } from "./topology.js";
import { currentContext, holdsTransaction, type Database } from "./unit-of-work.js";

/** The role the runtime pool acts as: DML only, not the tables' owner, so row-level security applies. */
export const RUNTIME_ROLE = "sv_app";

export interface PoolOptions {
  /** Connect as the owner instead of `sv_app` (migrations and maintenance only). */
  asOwner?: boolean;
  /** Hook called with every query text (benchmarks and tests count queries with it). */
  onQuery?: (database: string, query: string) => void;
  /**
   * A unit of work asking its own pool for a second connection: fail (default), or report and go on
   * (then only the acquire timeout stands between the pool and a deadlock under load).
   */
  onPoolReentry?: "throw" | ((message: string) => void);
  /** Told when a database goes down or comes back (the SDK logs it). */
  onHealthChange?: (database: string, state: DatabaseHealthStatus) => void;
}

export interface Pool {
  name: string;
  /** The pool's client, behind its gate (acquire timeout, no re-entry from a unit holding one of its connections). */
  sql: postgres.Sql;
  db: Database;
  gate: PoolGate;
  /** Whether the database answers (src/db/health.ts): work on one known down fails at once. */
  health: DatabaseHealth;
}

/**
 * The server-side deadlines, as startup parameters: every session starts with them, so every
 * transaction has them without a round trip of its own. (Behind PgBouncer in transaction mode,
 * startup parameters do not reach the server: there they must travel with each transaction's first
 * statement — see DESIGN, "Scale-out".)
 */
function sessionDefaults(config: DatabaseConfig): Record<string, string> {
  return {
    application_name: "sv-sdk",
    statement_timeout: String(config.pool.statementTimeoutMs),
    lock_timeout: String(config.pool.lockTimeoutMs),
    idle_in_transaction_session_timeout: String(config.pool.idleInTransactionTimeoutMs),
  };
}

let warnedOwnerRuntime = false;

export function createPool(name: string, config: DatabaseConfig, options: PoolOptions): Pool {
  const url = options.asOwner ? config.url : (config.appUrl ?? config.url);
  const assumeRole = !options.asOwner && !config.appUrl;
  if (assumeRole && !warnedOwnerRuntime) {
    // Kept working for SDK users who give only the owner's URL, but it is not a wall: the session
    // still belongs to the owner, and `SET ROLE NONE` from injected SQL takes its powers back.
    warnedOwnerRuntime = true;
    process.emitWarning(
      `sv-sdk: database '${name}' has no runtime login (appUrl / databaseAppUrl / DATABASE_APP_URL): the pool logs in as the owner ` +
        "and only assumes sv_app, which injected SQL can undo with SET ROLE. Give it a login for sv_app " +
        "(migrating with that URL sets its password); entry points refuse to start without one in production.",
      { code: "SV_SDK_OWNER_RUNTIME" },
    );
  }
  const client = postgres(url, {
    max: config.pool.max,
    idle_timeout: config.pool.idleTimeoutSeconds,
    connect_timeout: config.pool.connectTimeoutSeconds,
    // A unit of work's first statements go out with its BEGIN (our postgres.js patch): one round trip
    // fewer per unit. The transaction still commits only after BEGIN has answered.
    pipeline_begin: true,
    // postgres.js waits (0.5-1) x min(3^n / 100, 20) s before reconnecting a slot, n counting the
    // pool's connection errors: after a restart a query waited out 10-20 s of it before trying. The
    // delay stays short; a database that is really down fails fast anyway (connect refused).
    backoff: (attempts: number) => Math.min(0.05 * 2 ** attempts, 0.5),
    onnotice: () => {},
    // A startup parameter is applied by the server as a setting: `role` makes every connection of
    // the pool act as sv_app from its first query, with no extra round trip.
    connection: assumeRole ? { role: RUNTIME_ROLE, ...sessionDefaults(config) } : sessionDefaults(config),
    debug: options.onQuery ? (_connection, query) => options.onQuery!(name, query) : undefined,
  });
  const probeConnection = assumeRole
    ? { role: RUNTIME_ROLE, ...sessionDefaults(config), application_name: "sv-sdk-health" }
    : { ...sessionDefaults(config), application_name: "sv-sdk-health" };
  const health = createDatabaseHealth({
    name,
    // A connection of its own: a pool that is merely full is not a database that is down.
    probeClient: () => {
      const probe = postgres(url, {
        max: 1,
        idle_timeout: 30,
        connect_timeout: config.pool.connectTimeoutSeconds,
        onnotice: () => {},
        connection: probeConnection,
      });
      return { ping: () => probe`select 1`, end: () => probe.end({ timeout: 0 }) };
    },
    onChange: () => options.onHealthChange?.(name, health.status()),
  });
  const gateOptions = {
    health,
    name,
    max: config.pool.max,
    acquireTimeoutMs: config.pool.acquireTimeoutMs,
    queryTimeoutMs: config.pool.queryTimeoutMs,
    holdsConnection: () => holdsTransaction(name),
    deadline: () => currentContext().deadline,
    onReentry: options.onPoolReentry,
  };
  const gate = createPoolGate(gateOptions);
  const sql = gatedClient(client, gate, gateOptions);
  return { name, sql, db: drizzle(sql) as unknown as Database, gate, health };
}
