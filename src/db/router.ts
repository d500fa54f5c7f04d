/**
 * The router owns one postgres.js pool per database of the topology and hands each module a drizzle
 * handle for the database its schema lives in. The handle resolves, on every property access, to the
 * transaction open in the ambient unit of work, or to the pool when none is. Modules on the same
 * database share one pool.
 */
import { drizzle } from "drizzle-orm/postgres-js";
import { sql as rawSql } from "drizzle-orm";
import postgres from "postgres";
import { transientError } from "../errors.js";
import { Deadline, earliest } from "./deadline.js";
import { createDatabaseHealth, type DatabaseHealth, type DatabaseHealthStatus } from "./health.js";
import { createPoolGate, gatedClient, type PoolGate } from "./pool-gate.js";
import {
  ambientTransaction,
  placedInUnit,
  assertOneDatabaseWritten,
  currentContext,
  currentLevel,
  currentStore,
  holdsTransaction,
  runInLevel,
  runPinned,
  type PublishedTransaction,
  type UnitLevel,
  runWithContext,
  runWithTransaction,
  type Database,
} from "./unit-of-work.js";
import type { ModuleCatalog } from "./module.js";
import { databaseOf, type DatabaseConfig, type Topology } from "./topology.js";

/** The role the runtime pool acts as: DML only, not the tables' owner, so row-level security applies. */
export const RUNTIME_ROLE = "sv_app";

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
 * How the outermost transactions of a unit of work run (a nested level is a savepoint of its
 * parent's and takes what the parent has).
 */
export interface TransactionOptions {
  isolation?: "read committed" | "repeatable read" | "serializable";
  readOnly?: boolean;
  /**
   * The unit's own deadline instead of the pool's `transactionTimeoutMs` (outermost unit only; a
   * request's deadline still wins when earlier): maintenance that must read a whole trail in one
   * snapshot. Still a deadline.
   */
  timeoutMs?: number;
}

export interface RouterOptions {
  /** Connect as the owner instead of `sv_app` (migrations and maintenance only). */
  asOwner?: boolean;
  /** Hook called with every query text (benchmarks and tests count queries with it). */
  onQuery?: (database: string, query: string) => void;
  /**
   * A unit of work asking its own pool for a second connection: fail (default), or report and go on
   * (then only the acquire timeout stands between the pool and a deadlock under load).
   */
  onPoolReentry?: "throw" | ((message: string) => void);
  /** Refuse, before committing, a unit of work that wrote to two databases (tests: see `assertOneDatabaseWritten`). */
  refuseCrossDatabaseWrites?: boolean;
  /** Told when a database goes down or comes back (the SDK logs it). */
  onHealthChange?: (database: string, state: DatabaseHealthStatus) => void;
}

export interface Router {
  readonly topology: Topology;
  /**
   * The ambient-transaction-aware handle for a module's database. For a module with tenant tables
   * it follows the unit of work's tenant: a tenant moved to a database
   * of its own (`sv-sdk tenant:move`) is read and written there, with no change to the caller.
   */
  db(module: string): Database;
  /** The ambient-transaction-aware handle for a named database (your own tables). */
  database(name?: string): Database;
  /** The raw postgres.js pool of a database (LISTEN/NOTIFY, COPY, benchmarks). */
  pool(database: string): Pool;
  /** Where a module's schema lives by the topology (ignores tenant placement). */
  databaseOf(module: string): string;
  /** Where a module's rows are read and written right now: `databaseOf`, or the current tenant's database. */
  routedDatabase(module: string): string;
  /** The modules the router serves: their schemas, tables and where each table may live. */
  readonly catalog: ModuleCatalog;
  /**
   * Where a tenant's rows live: its placement in the control plane, or undefined for the default
   * (each schema's database). Answered from memory once the placements are loaded (they change
   * only when a tenant moves, and the move announces it).
   */
  placementOf(tenantId: string): Promise<string | undefined>;
  /** Every database of the topology, main first (each may hold moved tenants' rows). */
  databases(): string[];
  /**
   * What the router knows of a database's health: `up`, or `down` since a moment (it did not answer
   * a probe). Work on a database known down fails at once with 503 DATABASE_UNAVAILABLE; the router
   * probes it every second and serves it again as soon as it answers.
   */
  health(database: string): DatabaseHealthStatus;
  /** Whether the caller runs inside a unit of work (an open transaction or savepoint). */
  inUnitOfWork(): boolean;
  /**
   * Runs `fn` with the tenant-scoped modules' handles pointed at `database`: for platform work
   * (a module's background work) that visits every database in turn.
   *
   * @example
   * for (const database of sdk.router.databases()) {
   *   await sdk.router.onDatabase(database, () => sdk.withTenant("*", () => purgeExpired()));
   * }
   */
  onDatabase<T>(database: string, fn: () => Promise<T>): Promise<T>;
  /**
   * Runs `fn` in a unit of work: opens a transaction on every database that hosts a module, or a
   * savepoint in each when one is already open. Commits when `fn` resolves, rolls back when it throws.
   */
  transaction<T>(fn: () => Promise<T>, options?: TransactionOptions): Promise<T>;
  /**
   * Runs `fn` with rows scoped to `tenantId` (`"*"` for every tenant). Sets `sv.tenant_id` in the open
   * transactions, or opens a unit of work to carry it: row-level security reads it per transaction.
   */
  withTenant<T>(tenantId: string | null, fn: () => Promise<T>, options?: TransactionOptions): Promise<T>;
  close(timeoutSeconds?: number): Promise<void>;
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

function createPool(name: string, config: DatabaseConfig, options: RouterOptions): Pool {
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

async function setTenant(tx: Database, tenantId: string | null | undefined, readOnly = false): Promise<void> {
  if (readOnly) {
    await tx.execute(
      rawSql`select set_config('sv.tenant_id', ${tenantId ?? ""}, true), set_config('transaction_read_only', 'on', true)`,
    );
  } else {
    await tx.execute(rawSql`select set_config('sv.tenant_id', ${tenantId ?? ""}, true)`);
  }
}

/**
 * Enters a tenant in the control-plane database (drizzle/0010): sets `sv.tenant_id`, holds the
 * tenant's write gate (a move waits for the units holding it), and answers where the tenant lives.
 */
async function enterTenant(tx: Database, tenantId: string): Promise<{ database: string; state: string } | undefined> {
  const rows = await tx.execute<{ database: string | null; state: string | null }>(
    rawSql`select database, state from platform.enter_tenant(${tenantId})`,
  );
  const row = rows[0];
  return row?.database ? { database: row.database, state: row.state ?? "active" } : undefined;
}

const ROLLBACK = Symbol("rollback");
const UNIT_ENDED = new Error("sv-sdk: this unit of work has ended; its transaction can no longer be used");

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

const held = new WeakMap<UnitLevel, Map<string, HeldTransaction>>();

function rootOf(level: UnitLevel): UnitLevel {
  let root = level;
  while (root.parent) root = root.parent;
  return root;
}

/** The outermost level's transaction on `database`, opened on first use. */
function joinAtRoot(level: UnitLevel, database: string, pool: (database: string) => Pool): Promise<Database> {
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
function abandonJoined(root: UnitLevel): void {
  const transactions = held.get(root);
  if (!transactions) return;
  held.delete(root);
  for (const transaction of transactions.values()) transaction.finish(false).catch(() => undefined);
}

/** Commits (or rolls back) what nested levels opened at the outermost level; the first failure is thrown. */
async function settleJoined(root: UnitLevel, commit: boolean): Promise<void> {
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

/**
 * A handle that forwards every property to the ambient transaction of the database `resolve()`
 * names at that moment, or to that database's pool.
 */
function ambientHandle(resolve: () => string, pool: (database: string) => Pool, router: Router): Database {
  return new Proxy({} as Database, {
    get(_target, property) {
      if (property === "transaction") {
        // Nested work (a library's own transactions included) becomes a savepoint of the unit of work,
        // and the savepoint is published so module calls made inside it join it too.
        return <T>(fn: (tx: Database) => Promise<T>) => router.transaction(() => fn(ambientTransaction(resolve())!));
      }
      const database = resolve();
      const current = ambientTransaction(database) ?? pool(database).db;
      const value = Reflect.get(current, property, current);
      return typeof value === "function" ? value.bind(current) : value;
    },
  });
}

/** The topology's schema placements against the modules: every schema named exists, the control plane stays on main. */
function checkPlacement(topology: Topology, catalog: ModuleCatalog): void {
  const schemas = new Set(catalog.modules.map((m) => m.schema));
  for (const [schema, database] of Object.entries(topology.schemas)) {
    if (!schemas.has(schema)) {
      throw new Error(
        `Invalid database topology — schemas.${schema}: no module owns a schema '${schema}' (modules: ${[...schemas].join(", ")})`,
      );
    }
    if (database !== "main" && catalog.controlPlaneSchemas.includes(schema)) {
      throw new Error(
        `Invalid database topology — schemas.${schema}: the '${schema}' schema holds the control plane and must stay on 'main'`,
      );
    }
  }
}

/** The channel a tenant move notifies when it flips a placement. */
export const PLACEMENTS_CHANNEL = "sv_placements";

/**
 * The placements of tenants that live in a database of their own (few: most tenants have none), held
 * in memory while a listener hears the moves that change them; until then, asked per tenant.
 */
function createPlacements(
  main: () => Database,
  listen: (onChange: () => void) => Promise<(() => Promise<void>) | undefined>,
) {
  let known: Map<string, string> | undefined;
  let listening: Promise<(() => Promise<void>) | undefined> | undefined;
  let live = false;
  const forget = () => {
    known = undefined;
  };
  const load = async () => {
    const rows = await main().execute<{ tenant: string; database: string }>(
      rawSql`select tenant_id::text as tenant, database from platform.tenant_placements`,
    );
    known = new Map(rows.map((r) => [r.tenant, r.database]));
  };
  return {
    async of(tenantId: string): Promise<string | undefined> {
      listening ??= listen(forget).then(
        (unlisten) => ((live = unlisten !== undefined), unlisten),
        () => ((listening = undefined), undefined),
      );
      if (live && known) return known.get(tenantId);
      if (live) {
        await load();
        return known!.get(tenantId);
      }
      const [row] = await main().execute<{ database: string }>(
        rawSql`select database from platform.tenant_placements where tenant_id = ${tenantId}::uuid`,
      );
      return row?.database;
    },
    async stop() {
      const unlisten = await listening?.catch(() => undefined);
      listening = undefined;
      live = false;
      await unlisten?.().catch(() => undefined);
    },
  };
}

export function createRouter(topology: Topology, catalog: ModuleCatalog, options: RouterOptions = {}): Router {
  checkPlacement(topology, catalog);
  const refuseCrossDatabaseWrites = options.refuseCrossDatabaseWrites === true;
  const moduleByName = new Map(catalog.modules.map((m) => [m.name, m]));
  const schemaOf = (module: string): string => {
    const found = moduleByName.get(module);
    if (!found) throw new Error(`No module named '${module}' is registered with the router`);
    return found.schema;
  };
  const tenantModules = new Set(
    catalog.modules.filter((m) => catalog.tenantSchemas.includes(m.schema)).map((m) => m.name),
  );
  const pools = new Map<string, Pool>();
  for (const [name, config] of Object.entries(topology.databases)) {
    pools.set(name, createPool(name, config, options));
  }
  // Databases that host at least one module, main first: a unit of work opens a transaction on each.
  const transactional = [...new Set(["main", ...catalog.modules.map((m) => databaseOf(topology, m.schema))])];
  const pool = (database: string): Pool => {
    const found = pools.get(database);
    if (!found) throw new Error(`The topology has no database named '${database}'`);
    return found;
  };

  const handles = new Map<string, Database>();
  const handleFor = (database: string): Database => {
    let handle = handles.get(database);
    if (!handle) {
      pool(database); // an unknown name fails here, not at first use
      handle = ambientHandle(() => database, pool, router);
      handles.set(database, handle);
    }
    return handle;
  };
  const routedDatabase = (module: string): string => {
    const home = databaseOf(topology, schemaOf(module));
    if (!tenantModules.has(module)) return home;
    const store = currentStore();
    return store?.pinned ?? store?.level?.tenantDatabase ?? home;
  };
  const moduleHandles = new Map<string, Database>();
  const moduleHandle = (module: string): Database => {
    let handle = moduleHandles.get(module);
    if (!handle) {
      handle = tenantModules.has(module)
        ? ambientHandle(() => routedDatabase(module), pool, router)
        : handleFor(databaseOf(topology, schemaOf(module)));
      moduleHandles.set(module, handle);
    }
    return handle;
  };

  const placements = createPlacements(
    () => handleFor("main"),
    async (onChange) => {
      const meta = await pool("main").sql.listen(PLACEMENTS_CHANNEL, onChange, onChange);
      return () => meta.unlisten();
    },
  );

  const router: Router = {
    topology,
    pool,
    catalog,
    placementOf: async (tenantId) => placedInUnit(tenantId) ?? placements.of(tenantId),
    databaseOf: (module) => databaseOf(topology, schemaOf(module)),
    routedDatabase,
    inUnitOfWork: () => currentLevel() !== undefined,
    health: (database) => pool(database).health.status(),
    databases: () => [...pools.keys()].sort((a, b) => (a === "main" ? -1 : b === "main" ? 1 : a.localeCompare(b))),
    onDatabase: (database, fn) => {
      pool(database);
      return runPinned(database, fn);
    },
    db: moduleHandle,
    database: (name = "main") => handleFor(name),
    async transaction<T>(fn: () => Promise<T>, options: TransactionOptions = {}): Promise<T> {
      const parent = currentLevel();
      const config =
        options.isolation || options.readOnly
          ? { isolationLevel: options.isolation, accessMode: options.readOnly ? ("read only" as const) : undefined }
          : undefined;
      // Row-level security reads sv.tenant_id per transaction: each level runs with its context's
      // tenant — a request's savepoint inside an open transaction included — and a savepoint that
      // changed it hands the parent's back when it ends (a rolled-back one reverts it by itself).
      const context = currentContext();
      const tenant = context.tenantId ?? null;
      // The whole unit ends by one deadline: the request's, or the pool's transaction timeout. Each
      // level races it, so a unit stuck on one database (frozen, unreachable) rolls back and gives
      // back the connections it holds on the others instead of keeping them until it answers.
      const own = parent
        ? undefined
        : Deadline.in(options.timeoutMs ?? topology.databases.main!.pool.transactionTimeoutMs, "transaction");
      const deadline = parent?.deadline ?? earliest(context.deadline, own)!;
      const level: UnitLevel = { parent, afterRollback: [], tenant, deadline };
      const inherited = parent?.tenant ?? null;
      const body = async () => {
        const result = await fn();
        if (level.failure !== undefined) throw level.failure;
        // Work that finished after the deadline is not committed: the caller has been told it failed.
        if (deadline.expired()) throw deadline.error();
        return result;
      };
      // Main (the control plane) first: entering the tenant there says where its rows live, and
      // that database joins the unit too. Workers pinned to a database open it as well.
      const databases = [...transactional];
      const pinned = currentStore()?.pinned;
      if (pinned && !databases.includes(pinned)) databases.push(pinned);
      if (tenant === inherited) level.tenantDatabase = parent?.tenantDatabase;
      if (level.tenantDatabase && !databases.includes(level.tenantDatabase)) databases.push(level.tenantDatabase);
      let moving = false;
      // The outermost level commits what nested levels opened on databases it had not (see below)
      // once its work is done, before its own transactions commit.
      const finished = async (): Promise<T> => {
        try {
          const result = await body();
          if (refuseCrossDatabaseWrites && level.crossDatabase === undefined) {
            const open = new Map([...(currentStore()?.transactions ?? [])].map(([d, p]) => [d, p.db]));
            for (const [database, joined] of held.get(level) ?? []) open.set(database, await joined.tx);
            await assertOneDatabaseWritten(open);
          }
          await settleJoined(level, true);
          return result;
        } catch (error) {
          await settleJoined(level, false);
          throw error;
        }
      };
      const open = async (index: number): Promise<T> => {
        if (index === databases.length) return parent ? body() : finished();
        const database = databases[index]!;
        let outer = ambientTransaction(database);
        if (!outer && parent) {
          // A nested level reaching a database the unit has not opened (a tenant entered midway):
          // the transaction there belongs to the outermost level, so it commits with the unit, not
          // when this level ends; this level is a savepoint in it.
          outer = await deadline.race(joinAtRoot(level, database, pool));
        }
        const opening = (outer ?? pool(database).db).transaction(
          async (tx) => {
            // Opened after the deadline (BEGIN waited on a slow or frozen server): the caller is gone.
            if (deadline.expired()) throw deadline.error();
            const joined = tx as unknown as Database;
            const published: PublishedTransaction = { db: joined };
            try {
              const changes = outer ? tenant !== inherited : tenant !== null;
              if (database === "main" && changes && tenant !== null && tenant !== "*") {
                const placement = await enterTenant(joined, tenant);
                level.tenantDatabase = placement?.database;
                moving = placement?.state === "moving";
                if (placement && !pools.has(placement.database)) {
                  throw new Error(
                    `Tenant ${tenant} lives on database '${placement.database}', which this topology does not define`,
                  );
                }
                if (placement && !databases.includes(placement.database)) databases.push(placement.database);
              } else if (changes) {
                // A moving tenant's rows are read-only where they are until the move ends (drizzle/0010).
                await setTenant(joined, tenant, moving && database === level.tenantDatabase);
              }
              const result = await deadline.race(runWithTransaction(database, published, () => open(index + 1)));
              if (outer && changes) await setTenant(joined, inherited);
              return result;
            } finally {
              published.ended = deadline.expired() ? deadline.error() : UNIT_ENDED;
            }
          },
          outer ? undefined : config,
        );
        return deadline.race(opening);
      };
      try {
        return await runInLevel(level, () => open(0));
      } catch (error) {
        if (!parent) abandonJoined(level);
        // This level has rolled back; what must outlive it runs now, in the enclosing level.
        for (const work of level.afterRollback) await router.transaction(work);
        // A database that could not answer, or answered "too busy", is the caller's to retry: say so
        // with one error (503), whatever library the failure surfaced through.
        throw (parent ? undefined : transientError(error)) ?? error;
      } finally {
        if (deadline === own) own.dispose();
      }
    },
    withTenant<T>(tenantId: string | null, fn: () => Promise<T>, options?: TransactionOptions): Promise<T> {
      // A unit of work (or a savepoint of the open one) that carries the tenant.
      return runWithContext({ tenantId }, () => router.transaction(fn, options));
    },
    async close(timeoutSeconds = 5) {
      await placements.stop();
      await Promise.all([...pools.values()].map((p) => p.health.stop()));
      await Promise.all([...pools.values()].map((p) => p.sql.end({ timeout: timeoutSeconds })));
    },
  };
  return router;
}
