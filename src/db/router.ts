/**
 * The router owns one postgres.js pool per database of the topology and hands each module a drizzle
 * handle for the database its schema lives in. The handle resolves, on every property access, to the
 * transaction open in the ambient unit of work, or to the pool when none is. Modules on the same
 * database share one pool.
 */
import { CommonErrors, transientError } from "../errors.js";
import { Deadline, earliest } from "./deadline.js";
import type { DatabaseHealthStatus } from "./health.js";
import { createPool, type Pool, type PoolOptions } from "./pools.js";
import {
  abandonJoined,
  enterResident,
  enterTenant,
  lazyTransaction,
  type TenantEntry,
  held,
  joinAtRoot,
  settleJoined,
  setTenant,
  UNIT_ENDED,
} from "./unit-transactions.js";
import {
  ambientTransaction,
  notePlacement,
  placedInUnit,
  assertOneDatabaseWritten,
  currentContext,
  currentLevel,
  currentStore,
  runInLevel,
  runPinned,
  type PublishedTransaction,
  type UnitLevel,
  runWithContext,
  runWithTransaction,
  type Database,
  wroteIn,
} from "./unit-of-work.js";
import type { ModuleCatalog } from "./module.js";
import { createPlacements, PLACEMENTS_CHANNEL } from "./placements-memory.js";
import { checkSchemaPlacement, databaseOf, type Topology } from "./topology.js";
import { ambientHandle } from "./ambient-handle.js";

export { RUNTIME_ROLE } from "./pools.js";
export type { Pool } from "./pools.js";

/** How the outermost transactions of a unit of work run (a nested level, a savepoint, takes its parent's). */
export interface TransactionOptions {
  isolation?: "read committed" | "repeatable read" | "serializable";
  readOnly?: boolean;
  /** The outermost unit's own deadline instead of `transactionTimeoutMs` (a request's still wins when earlier). */
  timeoutMs?: number;
}

export interface RouterOptions extends PoolOptions {
  /** Refuse, before committing, a unit of work that wrote to two databases (tests: see `assertOneDatabaseWritten`). */
  refuseCrossDatabaseWrites?: boolean;
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
  /** A tenant was just placed: remembered at the unit's commit, or at once outside one (others hear a notification). */
  placed(tenantId: string, database: string): void;
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

export function createRouter(topology: Topology, catalog: ModuleCatalog, options: RouterOptions = {}): Router {
  checkSchemaPlacement(topology, catalog);
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
  // No placement and a placement on main route a tenant's rows alike when every tenant module lives on main.
  const tenantsHomeOnMain = [...tenantModules].every((m) => databaseOf(topology, schemaOf(m)) === "main");
  const sameRoute = (a: string | undefined, b: string | undefined) =>
    a === b || (tenantsHomeOnMain && (a ?? "main") === (b ?? "main"));
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
      handle = ambientHandle(() => database, pool, router.transaction);
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
        ? ambientHandle(() => routedDatabase(module), pool, router.transaction)
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
    placed: (tenantId, database) =>
      currentLevel() ? notePlacement(tenantId, database) : placements.learn(tenantId, database),
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
      // Set when the outermost level entered its tenant optimistically (see `open`): the entry's
      // answer, and where the unit went by memory, checked before anything commits.
      let entry: { answer: Promise<TenantEntry | undefined>; expected: string | undefined } | undefined;
      const body = async () => {
        let result: T;
        try {
          result = await fn();
        } catch (error) {
          // A statement queued behind a failed entry fails only because the transaction is aborted
          // (25P02); the entry's own error (a lock timeout behind a move's cutover…) is the one to tell.
          const failed = error as { code?: string; cause?: { code?: string } } | undefined;
          if (entry && (failed?.code ?? failed?.cause?.code) === "25P02") await entry.answer;
          throw error;
        }
        if (level.failure !== undefined) throw level.failure;
        if (entry) {
          const written = confirmEntry(await entry.answer, entry.expected);
          if (written && (await wroteIn(written))) throw CommonErrors.TENANT_MOVING();
        }
        // Work that finished after the deadline is not committed: the caller has been told it failed.
        if (deadline.expired()) throw deadline.error();
        return result;
      };
      // Main's answer to an optimistic entry, before the unit commits anywhere: the tenant must live
      // where the unit went (a memory gone stale is forgotten, and the caller retries: nothing
      // commits), and a tenant found moving must not have been written where it lives — the
      // transaction to ask that of is returned.
      const confirmEntry = (placement: TenantEntry | undefined, expected: string | undefined) => {
        if (!sameRoute(placement?.database, expected)) {
          placements.forget();
          throw CommonErrors.TENANT_MOVING();
        }
        const there = placement?.state === "moving" ? level.tenantDatabase : undefined;
        return there && there !== "main" ? ambientTransaction(there) : undefined;
      };
      // Main (the control plane) first: entering the tenant there says where its rows live, and
      // that database joins the unit too. A unit in a tenant placed on a database of its own enters
      // it there instead (its residents, drizzle/0024), and opens main only if it uses it: a read of
      // the tenant's rows sends main nothing. It asks main's pool, if at all, while it holds one of
      // the tenant's database — so with no memory of the placement yet, main is asked before
      // anything is held rather than entered first.
      const pinned = currentStore()?.pinned;
      const entering = !parent && tenant !== null && tenant !== "*";
      const remembered = entering ? (placements.remembered(tenant) ?? (await placements.ask(tenant))) : undefined;
      const resident =
        remembered?.database && remembered.database !== "main" && pools.has(remembered.database)
          ? remembered.database
          : undefined;
      const lazyMain = resident
        ? lazyTransaction(pool("main"), (tx) => setTenant(tx, tenant), deadline.race.bind(deadline))
        : undefined;
      const databases = lazyMain ? transactional.filter((d) => d !== "main") : [...transactional];
      if (resident) level.tenantDatabase = resident;
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
            const open = new Map(
              [...(currentStore()?.transactions ?? [])].flatMap(([d, p]) => (p.pending ? [] : [[d, p.db]])),
            );
            const lazy = lazyMain?.opened();
            if (lazy) open.set("main", lazy);
            for (const [database, joined] of held.get(level) ?? []) open.set(database, await joined.tx);
            await assertOneDatabaseWritten(open);
          }
          if (held.has(level)) await settleJoined(level, true);
          return result;
        } catch (error) {
          if (held.has(level)) await settleJoined(level, false);
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
              if (database === resident && !outer) {
                // Optimistic, as below: the answer is checked before anything commits.
                const answer = enterResident(joined, tenant!).then((state) =>
                  state ? { database, state } : undefined,
                );
                answer.catch(() => undefined);
                entry = { answer, expected: database };
              } else if (database === "main" && changes && tenant !== null && tenant !== "*") {
                if (remembered) {
                  // Optimistic entry: the unit goes where memory says the tenant lives without
                  // waiting for the entry's answer. postgres.js sends the unit's first statements
                  // right behind it (the entry costs no round trip of its own), and the server runs
                  // them after it: the tenant is set, its write gate held, and a tenant moving out of
                  // main read-only before any of them. `body` checks the answer before anything commits.
                  const answer = enterTenant(joined, tenant);
                  answer.catch(() => undefined);
                  entry = { answer, expected: remembered.database };
                  level.tenantDatabase = remembered.database;
                } else {
                  const placement = await enterTenant(joined, tenant);
                  level.tenantDatabase = placement?.database;
                  moving = placement?.state === "moving";
                }
                const placed = level.tenantDatabase;
                if (placed && !pools.has(placed)) {
                  throw new Error(
                    `Tenant ${tenant} lives on database '${placed}', which this topology does not define`,
                  );
                }
                if (placed && !databases.includes(placed)) databases.push(placed);
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
        const run = () => runInLevel(level, () => open(0));
        const result = lazyMain ? await runWithTransaction("main", lazyMain.published, run) : await run();
        // Main commits last, as when it opens first: a tenant created on a database of its own exists by main's commit.
        await lazyMain?.finish(true);
        // Other instances hear of tenants placed here by notification; this one knows at its commit.
        if (!parent) for (const [tenantId, database] of level.placed ?? []) placements.learn(tenantId, database);
        return result;
      } catch (error) {
        if (!parent) abandonJoined(level);
        if (lazyMain) {
          // Rolled back before the caller hears of the failure, unless the unit's time is up.
          const rolledBack = lazyMain.finish(false).catch(() => undefined);
          await deadline.race(rolledBack).catch(() => undefined);
        }
        // This level has rolled back; what must outlive it runs now, in the enclosing level.
        for (const work of level.afterRollback) await router.transaction(work);
        // A database that could not answer, or answered "too busy", is the caller's to retry: say so
        // with one error (503), whatever library the failure surfaced through.
        throw (parent ? undefined : transientError(error)) ?? error;
      } finally {
        if (lazyMain) lazyMain.published.ended = deadline.expired() ? deadline.error() : UNIT_ENDED;
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
