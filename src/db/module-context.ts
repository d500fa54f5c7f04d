/**
 * The placement primitives a module works with (src/db/module.ts, `ModuleContext`): its handles,
 * the unit of work, and the few operations that concern several databases — visiting every one of
 * them, reading a tenant's rows beside the module's home rows, ensuring referenced control-plane
 * rows, listening everywhere. They are the only place that knows which databases exist: module code
 * names none and loops over none.
 */
import { sql } from "drizzle-orm";
import { transientError } from "../errors.js";
import type { Logger } from "../logger.js";
import type {
  Everywhere,
  EverywhereOptions,
  MergedPage,
  MergedPageRequest,
  ModuleContext,
  ModuleDescriptor,
  ModuleLifecycle,
  Place,
} from "./module.js";
import { effectStatement, enqueue, routeEffect, scopeAdmits, unitDatabase, type Effect, type Row } from "./outbox.js";
import type { Router } from "./router.js";

/** `schema.table.column` → its parts. */
const parts = (end: string) => {
  const [schema, table, column] = end.split(".") as [string, string, string];
  return { schema, table, column, qualified: `"${schema}"."${table}"` };
};

export function createModuleContext(
  router: Router,
  descriptor: ModuleDescriptor<ModuleLifecycle, never>,
  logger: Logger,
): ModuleContext {
  const name = descriptor.name;
  const hasTenantRows = router.catalog.tenantSchemas.includes(descriptor.schema);
  const home = router.databaseOf(name);
  /** The databases that may hold this module's rows, its home first. */
  const databases = () => (hasTenantRows ? [home, ...router.databases().filter((d) => d !== home)] : [home]);

  /** Runs `fn` with the module's handles at `database`, in a unit scoped to the tenant (default every tenant's). */
  const at = <T>(database: string, fn: () => Promise<T>, options: EverywhereOptions = {}): Promise<T> => {
    const { tenant, ...unit } = options;
    return router.onDatabase(database, () => router.withTenant(tenant === undefined ? "*" : tenant, fn, unit));
  };

  /** Control-plane tables the module's tables point at, by `schema.table` of the pointing table. */
  const references = new Map<string, { column: string; table: string; toColumn: string }[]>();
  for (const key of descriptor.crossKeys ?? []) {
    const from = parts(key.from);
    const to = parts(key.to);
    if (router.catalog.tables.get(`${to.schema}.${to.table}`)?.kind !== "control-plane") continue;
    const list = references.get(`${from.schema}.${from.table}`) ?? [];
    list.push({ column: from.column, table: to.qualified, toColumn: to.column });
    references.set(`${from.schema}.${from.table}`, list);
  }

  /**
   * Inserts rows at `target`, the unit's own database (or, outside a unit, on their own): in the
   * ambient transaction when its row-level security scope admits every row's tenant, else in a
   * savepoint scoped to every tenant.
   */
  const insertHere = async (target: string, effect: Effect, rows: readonly Row[]): Promise<void> => {
    const write = async () => {
      await router.database(target).execute(effectStatement(router, effect as Extract<Effect, { op: "insert" }>));
    };
    const tenants = rows.map((r) => (r.tenant_id as string | null | undefined) ?? null);
    if (!router.inUnitOfWork()) {
      if (tenants.every((t) => t === null)) return write();
      return router.onDatabase(target, () => router.withTenant("*", write));
    }
    return scopeAdmits(tenants) ? write() : router.withTenant("*", write);
  };

  const context: ModuleContext = {
    module: name,
    logger,
    db: () => router.db(name),
    schemaDb: () => router.database(home),
    transaction: (fn, options) => router.transaction(fn, options),
    withTenant: (tenantId, fn, options) => router.withTenant(tenantId, fn, options),
    inUnitOfWork: () => router.inUnitOfWork(),
    spansOneDatabase: () => router.databases().length === 1,

    async everywhere<T>(fn: () => Promise<T>, options: EverywhereOptions = {}): Promise<Everywhere<T>> {
      const result: Everywhere<T> = { results: [], places: [], missing: [] };
      for (const database of databases()) {
        try {
          result.results.push(await at(database, fn, options));
          result.places.push(database as Place);
        } catch (error) {
          // One database down or frozen costs what lives there, not the whole answer.
          const transient = transientError(error);
          if (!transient) throw error;
          logger.warn("a database could not answer a platform-wide read", {
            module: name,
            database,
            code: transient.code,
          });
          result.missing.push({ database, reason: transient.code });
        }
      }
      return result;
    },

    at: (place, fn, options) => at(place, fn, options),

    async mergedPage<T, K>(request: MergedPageRequest<T, K>): Promise<MergedPage<T>> {
      const list = databases();
      let after: K | undefined;
      let afterRank = list.length;
      if (request.cursor) {
        let decoded: unknown;
        try {
          decoded = JSON.parse(Buffer.from(request.cursor, "base64url").toString("utf8"));
        } catch {
          decoded = undefined;
        }
        const [key, rank, ...rest] = Array.isArray(decoded) ? decoded : [];
        // A cursor the module did not make is the module's own 400 (parseKey throws it).
        if (!Number.isInteger(rank) || (rank as number) < 0 || (rank as number) >= list.length || rest.length > 0)
          request.parseKey(undefined);
        after = request.parseKey(key);
        afterRank = rank as number;
      }
      const located: { row: T; rank: number }[] = [];
      const missing: MergedPage<T>["missing"] = [];
      for (const [rank, database] of list.entries()) {
        // Rows tied with the cursor's row sort after it in the places ranked below its place.
        const inclusive = after !== undefined && rank < afterRank;
        try {
          const rows = await at(database, () => request.read(after, request.limit + 1, inclusive), request.options);
          for (const row of rows) located.push({ row, rank });
        } catch (error) {
          const transient = transientError(error);
          if (!transient) throw error;
          logger.warn("a database could not answer a platform-wide read", {
            module: name,
            database,
            code: transient.code,
          });
          missing.push({ database, reason: transient.code });
        }
      }
      located.sort((a, b) => request.compare(a.row, b.row) || b.rank - a.rank);
      const page = located.slice(0, request.limit);
      const last = page[page.length - 1];
      const nextCursor =
        located.length > request.limit && last
          ? Buffer.from(JSON.stringify([request.keyOf(last.row), last.rank])).toString("base64url")
          : null;
      return { rows: page.map((l) => l.row), nextCursor, missing };
    },

    async homeAndTenant<T>(tenantId: string | null, fn: () => Promise<T>): Promise<T[]> {
      const own = await router.onDatabase(home, fn);
      if (tenantId === null || tenantId === "*" || !hasTenantRows) return [own];
      const placed = await router.placementOf(tenantId);
      if (placed === undefined || placed === home) return [own];
      // In the tenant: a unit of work open in another tenant (or none) would hide its rows there.
      return [own, await router.onDatabase(placed, () => router.withTenant(tenantId, fn))];
    },

    async ensureReferenced(table: string, row: Record<string, unknown>): Promise<void> {
      const target = router.routedDatabase(name);
      if (target === "main") return;
      for (const ref of references.get(`${descriptor.schema}.${table}`) ?? []) {
        const id = row[ref.column];
        if (typeof id !== "string" || id === "") continue;
        const here = router.database(target);
        const [present] = await here.execute(
          sql`select 1 from ${sql.raw(ref.table)} where ${sql.raw(`"${ref.toColumn}"`)} = ${id}::uuid`,
        );
        if (present) continue;
        // Copied from main inside the unit of work: a row main has not committed yet is copied too.
        // Copies are never updated afterwards; only their ids matter to the keys.
        const [copy] = await router
          .database("main")
          .execute<{ rows: string | null }>(
            sql`select json_agg(r)::text as rows from ${sql.raw(ref.table)} r where r.${sql.raw(`"${ref.toColumn}"`)} = ${id}::uuid`,
          );
        if (!copy?.rows) continue;
        await here.execute(
          sql`insert into ${sql.raw(ref.table)} select * from jsonb_populate_recordset(null::${sql.raw(ref.table)}, ${copy.rows}::jsonb) on conflict do nothing`,
        );
      }
    },

    async insertRows(table: string, rows: readonly Record<string, unknown>[]): Promise<void> {
      if (rows.length === 0) return;
      const full = `${descriptor.schema}.${table}`;
      const placement = router.catalog.tables.get(full);
      if (!placement) throw new Error(`module '${name}' declares no table '${table}'`);
      const byTarget = new Map<string, Row[]>();
      const placed = new Map<string, string>();
      for (const row of rows) {
        const tenant = placement.kind === "tenant" ? ((row.tenant_id as string | null | undefined) ?? null) : null;
        let target = home;
        if (tenant !== null && router.databases().length > 1) {
          if (!placed.has(tenant)) placed.set(tenant, (await router.placementOf(tenant)) ?? home);
          target = placed.get(tenant)!;
        }
        byTarget.set(target, [...(byTarget.get(target) ?? []), row]);
      }
      for (const [target, group] of byTarget) {
        const effect: Effect = { op: "insert", table: full, rows: group };
        await routeEffect(router, target, effect, () => insertHere(target, effect, group));
      }
    },

    async removeCopies(table: string, keys: readonly Record<string, unknown>[]): Promise<void> {
      if (keys.length === 0) return;
      const full = `${descriptor.schema}.${table}`;
      if (router.catalog.tables.get(full)?.kind !== "control-plane")
        throw new Error(`removeCopies: '${full}' is not a control-plane table (only those are copied)`);
      const effect: Effect = { op: "delete", table: full, rows: [...keys] };
      // Outside a unit too, through main's outbox: a database that is down now gets it when it returns.
      const origin = unitDatabase() ?? "main";
      for (const database of router.databases()) {
        if (database === "main") continue;
        if (database === origin) await router.database(database).execute(effectStatement(router, effect));
        else await enqueue(router.database(origin), database, effect);
      }
    },

    async listen(channel, onNotify, onReconnect) {
      const settled = await Promise.allSettled(
        databases().map((database) => router.pool(database).sql.listen(channel, onNotify, onReconnect)),
      );
      const listening = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
      return {
        partial: listening.length < settled.length,
        unlisten: async () => {
          await Promise.all(listening.map((l) => l.unlisten().catch(() => undefined)));
        },
      };
    },
  };
  return context;
}

/**
 * A module built on a router outside `createSdk` (the command-line tools, tests, benchmarks): its
 * context, then the descriptor's `create` with the dependencies given.
 *
 * @example
 * const notes = moduleOn(router, notesModule, {}, logger);
 */
export function moduleOn<Instance extends ModuleLifecycle, Deps>(
  router: Router,
  descriptor: ModuleDescriptor<Instance, Deps>,
  deps: Deps,
  logger: Logger,
): Instance {
  return descriptor.create(
    createModuleContext(router, descriptor as ModuleDescriptor<ModuleLifecycle, never>, logger),
    deps,
  );
}
