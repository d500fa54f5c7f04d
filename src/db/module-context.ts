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
import type { Everywhere, ModuleContext, ModuleDescriptor, ModuleLifecycle } from "./module.js";
import type { Router } from "./router.js";

/** `schema.table.column` → its parts. */
const parts = (end: string) => {
  const [schema, table, column] = end.split(".") as [string, string, string];
  return { schema, table, column, qualified: `"${schema}"."${table}"` };
};

export function createModuleContext(router: Router, descriptor: ModuleDescriptor<ModuleLifecycle, never>, logger: Logger): ModuleContext {
  const name = descriptor.name;
  const hasTenantRows = router.catalog.tenantSchemas.includes(descriptor.schema);
  const home = router.databaseOf(name);
  /** The databases that may hold this module's rows, its home first. */
  const databases = () => (hasTenantRows ? [home, ...router.databases().filter((d) => d !== home)] : [home]);

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

  return {
    module: name,
    logger,
    db: () => router.db(name),
    schemaDb: () => router.database(home),
    transaction: (fn) => router.transaction(fn),
    withTenant: (tenantId, fn) => router.withTenant(tenantId, fn),
    inUnitOfWork: () => router.inUnitOfWork(),

    async everywhere<T>(fn: () => Promise<T>, options: { tenant?: string | null } = {}): Promise<Everywhere<T>> {
      const tenant = options.tenant === undefined ? "*" : options.tenant;
      const result: Everywhere<T> = { results: [], missing: [] };
      for (const database of databases()) {
        try {
          result.results.push(await router.onDatabase(database, () => router.withTenant(tenant, fn)));
        } catch (error) {
          // One database down or frozen costs what lives there, not the whole answer.
          const transient = transientError(error);
          if (!transient) throw error;
          logger.warn("a database could not answer a platform-wide read", { module: name, database, code: transient.code });
          result.missing.push({ database, reason: transient.code });
        }
      }
      return result;
    },

    async homeAndTenant<T>(tenantId: string | null, fn: () => Promise<T>): Promise<T[]> {
      const own = await router.onDatabase(home, fn);
      if (tenantId === null || tenantId === "*" || !hasTenantRows) return [own];
      const placed = await router.placementOf(tenantId);
      if (placed === undefined || placed === home) return [own];
      return [own, await router.onDatabase(placed, fn)];
    },

    async ensureReferenced(table: string, row: Record<string, unknown>): Promise<void> {
      const target = router.routedDatabase(name);
      if (target === "main") return;
      for (const ref of references.get(`${descriptor.schema}.${table}`) ?? []) {
        const id = row[ref.column];
        if (typeof id !== "string" || id === "") continue;
        const here = router.database(target);
        const [present] = await here.execute(sql`select 1 from ${sql.raw(ref.table)} where ${sql.raw(`"${ref.toColumn}"`)} = ${id}::uuid`);
        if (present) continue;
        // Copied from main inside the unit of work: a row main has not committed yet is copied too.
        // Copies are never updated afterwards; only their ids matter to the keys.
        const [copy] = await router
          .database("main")
          .execute<{ rows: string | null }>(sql`select json_agg(r)::text as rows from ${sql.raw(ref.table)} r where r.${sql.raw(`"${ref.toColumn}"`)} = ${id}::uuid`);
        if (!copy?.rows) continue;
        await here.execute(
          sql`insert into ${sql.raw(ref.table)} select * from jsonb_populate_recordset(null::${sql.raw(ref.table)}, ${copy.rows}::jsonb) on conflict do nothing`,
        );
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
}
