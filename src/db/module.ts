/**
 * Modules declare, the platform routes. A module (a core one, or one of yours) is described by one
 * object: its name, the schema it owns, where each of its tables may live, the
 * foreign keys it holds into other modules' tables, and how to create it. `createSdk` hands the
 * descriptors to the router; migrations, tenant moves and placement checks read them. Nothing in
 * `src/db` names a module.
 *
 * Where a table may live:
 * - `control-plane`: only in the main database — identities, sessions, tenants: what every other
 *   database's rows refer to.
 * - `schema`: wherever the topology places the module's schema (`schemas: { notes: "notes_store" }`),
 *   never split by tenant (one list per deployment: suppressions, preferences).
 * - `tenant`: with its schema, or in its tenant's own database once the tenant is placed there. Its
 *   rows carry `tenant_id`, or reach it through a foreign key to a table that does. Rows with no
 *   tenant (built-in roles, default templates, platform events) are the platform's and stay.
 */
import type { SQL } from "drizzle-orm";
import type { Logger } from "../logger.js";
import type { Database } from "./unit-of-work.js";

export type TableKind = "control-plane" | "schema" | "tenant";

export interface TablePlacement {
  kind: TableKind;
  /**
   * A tenant table whose rows are computed from others (a cache): a tenant move does not copy it —
   * the target computes it afresh — and removes it from the source.
   */
  derived?: boolean;
  /**
   * A tenant table the move does not replicate (a sealed trail whose seals are bound to the writing
   * database's transaction ids): its rows stay where they were written, unless the module moves them
   * itself in its `onTenantSwitched` hook. Reads visit every database.
   */
  staysWhereWritten?: boolean;
}

/** A foreign key from one of the module's tables into another module's table (`schema.table.column`). */
export interface CrossKey {
  name: string;
  from: string;
  to: string;
  onDelete: "cascade" | "set null";
}

/** The primitives a module's code uses instead of naming databases (src/db/module-context.ts). */
export interface ModuleContext {
  /** The module's name. */
  readonly module: string;
  readonly logger: Logger;
  /**
   * The module's handle, joined to the ambient unit of work: its tenant tables are read and written
   * where the unit's tenant lives, its other tables where the topology places its schema.
   */
  db(): Database;
  /** The handle of the database holding the module's schema, whatever the tenant (its `schema` tables). */
  schemaDb(): Database;
  /** One unit of work across everything (a savepoint inside an open one). */
  transaction<T>(fn: () => Promise<T>, options?: UnitOptions): Promise<T>;
  /** Work scoped to one tenant (`"*"`: every tenant, platform work; null: the global scope). */
  withTenant<T>(tenantId: string | null, fn: () => Promise<T>, options?: UnitOptions): Promise<T>;
  /** Whether the caller runs inside a unit of work. */
  inUnitOfWork(): boolean;
  /**
   * Whether every row of every module lives in one database (a topology of one): work that would
   * otherwise enter a tenant's scope to reach its database can stay where it is.
   */
  spansOneDatabase(): boolean;
  /**
   * Runs `fn` once for every database that may hold this module's tenant rows, in a unit of work
   * scoped to `tenant` (default `"*"`: platform work, every tenant's rows) there, and gathers the
   * results with the place each came from. A database that cannot answer (down, frozen) is reported
   * in `missing`, not thrown: a platform-wide read says what it could not see.
   */
  everywhere<T>(fn: () => Promise<T>, options?: EverywhereOptions): Promise<Everywhere<T>>;
  /**
   * Runs `fn` at a place an `everywhere` result came from (the module's handles resolve there), in a
   * unit of work scoped to `tenant` (default `"*"`). For work that comes back to the rows it read: a
   * dispatcher recording what it sent.
   */
  at<T>(place: Place, fn: () => Promise<T>, options?: EverywhereOptions): Promise<T>;
  /**
   * One page of rows from every place, in one order: each place's next `limit + 1` rows after the
   * cursor are merged, the first `limit` returned with a cursor for the next page (opaque; null on
   * the last page). `read(after)` reads one place's rows in `compare` order after `after` (a row key
   * `keyOf` gave, or none). Ties between places are broken by place, so pages never repeat or skip.
   */
  mergedPage<T, K>(request: MergedPageRequest<T, K>): Promise<MergedPage<T>>;
  /**
   * Runs `fn` where the module's home rows are (its schema's database) and, when the tenant lives
   * in a database of its own, there too: a read that unions global rows with the tenant's.
   */
  homeAndTenant<T>(tenantId: string | null, fn: () => Promise<T>): Promise<T[]>;
  /**
   * Makes sure the control-plane rows `row` references through the module's cross keys exist in the
   * database the unit writes this table into (a tenant placed elsewhere keeps its foreign keys).
   * Nothing to do where the control plane itself is.
   */
  ensureReferenced(table: string, row: Record<string, unknown>): Promise<void>;
  /**
   * Inserts `rows` (column → JSON value, the same columns in each) into the module's `table` in the
   * database that holds them: a tenant table's row where its `tenant_id`'s rows live, any other row
   * where the module's schema is. When that is not the database the ambient unit of work writes in,
   * the rows travel through that database's outbox and are inserted after the unit commits, exactly
   * once: a unit of work never commits in two databases.
   */
  insertRows(table: string, rows: readonly Record<string, unknown>[]): Promise<void>;
  /**
   * For a control-plane row being deleted in this unit (a user): deletes the copies other databases
   * keep of it for their foreign keys, and so (the keys cascade there) the rows that refer to it.
   * Through the outbox, after the unit commits, in every other database — one that is down gets it
   * when it returns. `keys` name the row's key columns.
   */
  removeCopies(table: string, keys: readonly Record<string, unknown>[]): Promise<void>;
  /**
   * LISTENs on `channel` in every database holding the module's rows (each notifies where it wrote).
   * `onReconnect` runs on every (re)connection: notifications sent meanwhile are lost.
   */
  listen(
    channel: string,
    onNotify: (payload: string) => void,
    onReconnect?: () => void,
  ): Promise<{ unlisten(): Promise<void>; partial: boolean }>;
}

/** Where an `everywhere` result came from: opaque to modules, given back to `at`. */
export type Place = string & { readonly __place: unique symbol };

export interface UnitOptions {
  isolation?: "read committed" | "repeatable read" | "serializable";
  readOnly?: boolean;
  /** The unit's deadline instead of the pool's transaction timeout: maintenance reading a whole trail. */
  timeoutMs?: number;
}

export interface EverywhereOptions extends UnitOptions {
  tenant?: string | null;
}

export interface Everywhere<T> {
  results: T[];
  /** The place of each result, in the same order. */
  places: Place[];
  /** The databases that could not answer, and why (for a partial answer's `missing` field). */
  missing: { database: string; reason: string }[];
}

export interface MergedPageRequest<T, K> {
  /**
   * Rows of one place after `after` (and, when `inclusive`, those tied with it), in `compare` order,
   * at most `limit`; all of them from the first when `after` is undefined.
   */
  read(after: K | undefined, limit: number, inclusive: boolean): Promise<T[]>;
  /** The order (negative: a before b), the same in every place. */
  compare(a: T, b: T): number;
  /** A row's position in that order (what `read` continues after; JSON-serialisable). */
  keyOf(row: T): K;
  /** Checks a key decoded from a client's cursor; throws the module's own error when it is not one. */
  parseKey(value: unknown): K;
  limit: number;
  /** The cursor of the previous page (from `nextCursor`), or none for the first. */
  cursor?: string | null;
  options?: EverywhereOptions;
}

export interface MergedPage<T> {
  rows: T[];
  nextCursor: string | null;
  missing: Everywhere<T>["missing"];
}

/**
 * What a module's `onTenantSwitched` hook is given (src/db/tenant-move.ts): the tenant's placement
 * already points at `to` and its new writes land there; its source rows are still in place.
 */
export interface TenantSwitch {
  tenantId: string;
  /** The source and the target database, by their names in the topology. */
  from: string;
  to: string;
  /** Owner handles (no unit of work, row-level security not applied): for the module's own tables only. */
  source: Database;
  target: Database;
  /**
   * In `tx` (a transaction on `source`): moves the rows of the module's `table` (unqualified) that
   * match `where` out of the live table into the copy the move keeps until `--finalize`. Returns
   * how many.
   */
  retain(tx: Database, table: string, where: SQL): Promise<number>;
  /** One line for the operator. */
  report(line: string): void;
}

/** What a module's `create` returns beside its API: lifecycle steps the SDK calls. */
export interface ModuleLifecycle {
  /** Seeds the module's platform rows (built-in roles, default templates), in every database. Idempotent. */
  seed?(): Promise<void>;
  /** Stops background work and listeners. */
  stop?(): Promise<void>;
}

export interface ModuleDescriptor<Instance extends ModuleLifecycle = ModuleLifecycle, Deps = unknown> {
  name: string;
  /** The PostgreSQL schema the module owns. */
  schema: string;
  /** Every table of the schema (partitions go with their parent), by unqualified name. */
  tables: Readonly<Record<string, TableKind | TablePlacement>>;
  /** Foreign keys from this module's tables into other modules' tables. */
  crossKeys?: readonly CrossKey[];
  /**
   * For the module that defines tenants: the control-plane table whose rows are the tenants (a
   * tenant placed in a database of its own gets its row there too, for the keys pointing at it).
   */
  tenants?: { table: string };
  /**
   * A module of yours: its drizzle-kit migrations folder (its schema's tables, policies and grants),
   * applied by `sdk.migrate()` after sv-sdk's on every database, in a ledger of its own.
   */
  migrations?: { folder: string; schemas?: readonly string[] };
  /**
   * Runs at every tenant move's switch, after the placement flipped, before the moved tables' source
   * rows are set aside: for `staysWhereWritten` tables whose rows the module moves itself (the audit
   * trail copies and re-seals its history on the target). `--resume` after a crash runs it again:
   * it must be idempotent. An error stops the move in its 'switched' phase (writes go to the target).
   */
  onTenantSwitched?(move: TenantSwitch): Promise<void>;
  create(context: ModuleContext, deps: Deps): Instance;
}

/**
 * Declares a module.
 *
 * @example
 * export const notesModule = defineModule({
 *   name: "notes",
 *   schema: "notes",
 *   tables: { notes: "tenant" },
 *   create: (context) => createNotes(context),
 * });
 */
export function defineModule<Instance extends ModuleLifecycle, Deps = unknown>(
  descriptor: ModuleDescriptor<Instance, Deps>,
): ModuleDescriptor<Instance, Deps> {
  for (const [table, placement] of Object.entries(descriptor.tables)) {
    const kind = typeof placement === "string" ? placement : placement.kind;
    if (!["control-plane", "schema", "tenant"].includes(kind)) {
      throw new Error(
        `module '${descriptor.name}': table '${table}' has no placement kind (control-plane, schema or tenant)`,
      );
    }
  }
  if (descriptor.tenants && placementOf(descriptor, descriptor.tenants.table)?.kind !== "control-plane") {
    throw new Error(
      `module '${descriptor.name}': the tenants table '${descriptor.tenants.table}' must be a control-plane table`,
    );
  }
  return descriptor;
}

/** A table's placement, normalised; undefined when the module does not declare the table. */
export function placementOf(descriptor: Pick<ModuleDescriptor, "tables">, table: string): TablePlacement | undefined {
  const placement = descriptor.tables[table];
  if (placement === undefined) return undefined;
  return typeof placement === "string" ? { kind: placement } : placement;
}

/** What the platform needs to know of every module at once. */
export interface ModuleCatalog {
  modules: readonly ModuleDescriptor<ModuleLifecycle, never>[];
  /** Every table, `schema.table` → its placement. */
  tables: ReadonlyMap<string, TablePlacement & { module: string }>;
  /** The schemas whose rows may follow a tenant. */
  tenantSchemas: readonly string[];
  /** The schemas of modules that hold control-plane tables: they stay on main. */
  controlPlaneSchemas: readonly string[];
  crossKeys: readonly CrossKey[];
  /** `schema.table` of the tenants registry, when a module defines one. */
  tenantsTable?: string;
}

export function catalogOf(modules: readonly ModuleDescriptor<ModuleLifecycle, never>[]): ModuleCatalog {
  const tables = new Map<string, TablePlacement & { module: string }>();
  const names = new Set<string>();
  const schemas = new Set<string>();
  let tenantsTable: string | undefined;
  for (const module of modules) {
    if (names.has(module.name)) throw new Error(`two modules are named '${module.name}'`);
    if (schemas.has(module.schema)) throw new Error(`two modules own the schema '${module.schema}'`);
    names.add(module.name);
    schemas.add(module.schema);
    for (const table of Object.keys(module.tables))
      tables.set(`${module.schema}.${table}`, { ...placementOf(module, table)!, module: module.name });
    if (module.tenants) {
      if (tenantsTable)
        throw new Error(
          `two modules define tenants ('${tenantsTable}' and '${module.schema}.${module.tenants.table}')`,
        );
      tenantsTable = `${module.schema}.${module.tenants.table}`;
    }
  }
  const crossKeys = modules.flatMap((m) => m.crossKeys ?? []);
  for (const key of crossKeys) {
    for (const end of [key.from, key.to]) {
      const table = end.split(".").slice(0, 2).join(".");
      if (!tables.has(table) && !table.startsWith("platform."))
        throw new Error(`cross key '${key.name}' names '${table}', which no module declares`);
    }
  }
  const kindsOf = (module: ModuleDescriptor<ModuleLifecycle, never>) =>
    Object.keys(module.tables).map((t) => placementOf(module, t)!.kind);
  return {
    modules,
    tables,
    tenantSchemas: modules.filter((m) => kindsOf(m).includes("tenant")).map((m) => m.schema),
    controlPlaneSchemas: modules.filter((m) => kindsOf(m).includes("control-plane")).map((m) => m.schema),
    crossKeys,
    tenantsTable,
  };
}
