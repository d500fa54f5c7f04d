/**
 * Topology: which databases exist and where each module's schema lives. One database (`main`) by
 * default; a schema moves to a database of its own by configuration alone:
 *
 *   { databases: { main: { url }, notes_store: { url } }, schemas: { notes: "notes_store" } }
 *
 * Which schemas exist is the modules' business (src/db/module.ts): the router checks the names
 * against them. Tenants are placed per tenant in the control plane (`platform.tenant_placements`),
 * not here, so moving a tenant needs no redeploy; the topology only says where a new tenant goes
 * (`tenants.defaultDatabase`, main unless set).
 */
import { z } from "zod";
import type { ModuleCatalog } from "./module.js";

const postgresUrl = z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// or postgresql:// connection URL");

export const databaseConfigSchema = z.object({
  /** Owner connection: migrations run here. */
  url: postgresUrl,
  /**
   * Runtime login for `sv_app`. Without it the runtime pool connects with `url` and assumes the
   * `sv_app` role at connection start, so grants and row-level security still apply.
   */
  appUrl: postgresUrl.optional(),
  replicas: z.array(postgresUrl).default([]),
  /**
   * The runtime pool and the deadlines of everything that runs on it. The defaults suit an API:
   * work that cannot finish in a few seconds fails with a 503 the client can retry, instead of
   * holding connections others are waiting for.
   */
  pool: z
    .object({
      max: z.number().int().min(1).max(200).default(10),
      idleTimeoutSeconds: z.number().int().min(0).default(30),
      /** Opening a connection (a down or unreachable server fails within this). */
      connectTimeoutSeconds: z.number().int().min(1).default(3),
      /** Longest wait for a free connection before a 503. */
      acquireTimeoutMs: z.number().int().min(1).default(5_000),
      /** PostgreSQL `statement_timeout` of every statement. */
      statementTimeoutMs: z.number().int().min(1).default(5_000),
      /** PostgreSQL `lock_timeout`: a lock wait longer than this fails the statement. */
      lockTimeoutMs: z.number().int().min(1).default(2_000),
      /** PostgreSQL `idle_in_transaction_session_timeout`: a transaction left idle this long is ended by the server. */
      idleInTransactionTimeoutMs: z.number().int().min(1).default(10_000),
      /**
       * Client side: how long a unit of work outside a request may take from its first statement to
       * its commit, and how long a standalone query waits for an answer. A frozen server answers
       * nothing; the server's own timeouts cannot fire there.
       */
      transactionTimeoutMs: z.number().int().min(1).default(30_000),
      queryTimeoutMs: z.number().int().min(1).default(10_000),
    })
    .prefault({}),
});

export const topologySchema = z
  .object({
    databases: z.record(z.string().regex(/^[a-z][a-z0-9_]*$/), databaseConfigSchema),
    schemas: z.record(z.string(), z.string()).default({}),
    /**
     * Where new tenants go. `defaultDatabase` (default `main`): a tenant created without a placement of
     * its own is placed there before its first row is written. `main` is the default placement — each
     * schema's rows where `schemas` puts them — and writes no placement row.
     */
    tenants: z.object({ defaultDatabase: z.string().default("main") }).prefault({}),
    /**
     * Named groups of databases (`{ eu: ["eu_1", "eu_2"] }`): a tenant created in a region goes to the
     * region's database holding the fewest tenants (ties: the first listed). A database belongs to
     * at most one region.
     */
    regions: z.record(z.string().regex(/^[a-z][a-z0-9_-]*$/), z.array(z.string()).min(1)).default({}),
  })
  .superRefine((topology, ctx) => {
    if (!topology.databases.main) {
      ctx.addIssue({ code: "custom", path: ["databases", "main"], message: "a database named 'main' is required" });
    }
    const defaultDatabase = topology.tenants.defaultDatabase;
    if (!topology.databases[defaultDatabase]) {
      ctx.addIssue({
        code: "custom",
        path: ["tenants", "defaultDatabase"],
        message: `new tenants go to database '${defaultDatabase}', which the topology does not define`,
      });
    }
    const regionOf = new Map<string, string>();
    for (const [region, databases] of Object.entries(topology.regions)) {
      for (const database of databases) {
        if (!topology.databases[database]) {
          ctx.addIssue({
            code: "custom",
            path: ["regions", region],
            message: `region '${region}' lists database '${database}', which the topology does not define`,
          });
        }
        const other = regionOf.get(database);
        if (other !== undefined) {
          ctx.addIssue({
            code: "custom",
            path: ["regions", region],
            message:
              other === region
                ? `region '${region}' lists database '${database}' twice`
                : `database '${database}' is in regions '${other}' and '${region}': a database belongs to at most one region`,
          });
        }
        regionOf.set(database, region);
      }
    }
    for (const [module, database] of Object.entries(topology.schemas)) {
      if (database && !topology.databases[database]) {
        ctx.addIssue({
          code: "custom",
          path: ["schemas", module],
          message: `schema '${module}' is placed on database '${database}', which the topology does not define`,
        });
      }
    }
  });

export type TopologyInput = z.input<typeof topologySchema>;
export type Topology = z.output<typeof topologySchema>;
export type DatabaseConfig = z.output<typeof databaseConfigSchema>;

/** Validates a topology, failing with a sentence per problem. */
export function parseTopology(input: TopologyInput): Topology {
  const result = topologySchema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join(".") || "topology"}: ${i.message}`);
    throw new Error(`Invalid database topology — ${problems.join("; ")}`);
  }
  return result.data;
}

/** The default topology: everything in one database. */
export function singleDatabase(url: string, appUrl?: string): Topology {
  return parseTopology({ databases: { main: { url, appUrl } } });
}

/** The region a database belongs to, or null. */
export function regionOf(topology: Topology, database: string): string | null {
  for (const [region, databases] of Object.entries(topology.regions)) {
    if (databases.includes(database)) return region;
  }
  return null;
}

/** The database a schema lives in (main unless the topology places it). */
export function databaseOf(topology: Topology, schema: string): string {
  return topology.schemas[schema] ?? "main";
}

/** The topology's schema placements against the modules: every schema named exists, the control plane stays on main. */
export function checkSchemaPlacement(topology: Topology, catalog: ModuleCatalog): void {
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
