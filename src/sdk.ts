/**
 * createSdk: the modules registered on one router, and the unit of work that spans them. The
 * package's face (src/index.ts) re-exports it beside the app and the public types.
 */
import { coreCatalog } from "./core-modules.js";
import type { ModuleDescriptor, ModuleLifecycle } from "./db/module.js";
import { migrateTopology, type AppMigrations, type MigrationReport } from "./db/migrate.js";
import { createModuleContext } from "./db/module-context.js";
import { createRouter, type Router } from "./db/router.js";
import { createTenantPlacements } from "./db/tenant-placement.js";
import { parseTopology, singleDatabase, type TopologyInput } from "./db/topology.js";
import { currentContext, runWithContext, type RequestContext } from "./db/unit-of-work.js";
import { silentLogger, type Logger } from "./logger.js";
import { auditModule, type AuditModule } from "./modules/audit/index.js";
import { emailModule, type EmailModule, type EmailOptions } from "./modules/email/index.js";
import { permissionsModule, type PermissionsModule } from "./modules/permissions/index.js";
import { authModule, type AuthModule, type AuthOptions } from "./modules/auth/index.js";
import { randomBytes } from "node:crypto";

export interface SdkOptions {
  /** Owner connection URL of the single database. Give this or `topology`. */
  databaseUrl?: string;
  /** Dedicated runtime login for `sv_app` (optional; see README "Database roles"). */
  databaseAppUrl?: string;
  /** Several databases and the placement of schemas on them. */
  topology?: TopologyInput;
  /** `production` turns on the strict checks (secrets, secure cookies). */
  environment?: "development" | "test" | "production";
  logger?: Logger;
  /** Called with every query's text (count queries in benchmarks and tests). */
  onQuery?: (database: string, query: string) => void;
  /** Email delivery; see EmailOptions. */
  email?: EmailOptions;
  /**
   * Authentication. `secret` (BETTER_AUTH_SECRET, 32+ characters) is required in production; elsewhere
   * a random one is made per process (sessions then end when it restarts).
   */
  auth?: Partial<AuthOptions>;
  /**
   * Modules of your own, beside the core ones: each is one descriptor (`defineModule`), created after
   * the core modules with them as its dependencies, reachable as `sdk.modules.<name>`.
   */
  modules?: readonly ModuleDescriptor<ModuleLifecycle, CoreModules>[];
  /**
   * Your own drizzle-kit migrations: `sdk.migrate()` applies them after sv-sdk's, on every database,
   * and grants `schemas` to the runtime role.
   */
  migrations?: AppMigrations;
}

/** The core modules, as a module of your own receives them. */
export interface CoreModules {
  audit: AuditModule;
  permissions: PermissionsModule;
  email: EmailModule;
  auth: AuthModule;
}

/**
 * Creates the SDK: the four modules on one connection router, and the unit of work that spans them.
 *
 * @example
 * const sdk = createSdk({ databaseUrl: process.env.DATABASE_URL });
 * await sdk.transaction(async () => {
 *   await sdk.audit.recordAuditEvent({ action: "invoice.paid", target: { type: "invoice", id } });
 * });
 * await sdk.close();
 */
export function createSdk(options: SdkOptions) {
  const topology = options.topology
    ? parseTopology(options.topology)
    : options.databaseUrl
      ? singleDatabase(options.databaseUrl, options.databaseAppUrl)
      : undefined;
  if (!topology) throw new Error("createSdk needs `databaseUrl` or `topology` to know where the database is");
  const environment = options.environment ?? "development";
  if (environment === "production") {
    // The owner's login is not a wall: SQL injected into a session of it can SET ROLE back to the owner.
    const ownerOnly = Object.entries(topology.databases)
      .filter(([, database]) => !database.appUrl)
      .map(([name]) => name);
    if (ownerOnly.length > 0) {
      throw new Error(
        `createSdk: in production every database needs a runtime login (databaseAppUrl / a topology database's appUrl / DATABASE_APP_URL); ` +
          `missing for ${ownerOnly.map((n) => `'${n}'`).join(", ")} — see README, "Database roles"`,
      );
    }
  }
  const logger = options.logger ?? silentLogger;
  const extra = options.modules ?? [];
  const catalog = coreCatalog(extra as readonly ModuleDescriptor<ModuleLifecycle, never>[]);
  const router: Router = createRouter(topology, catalog, { onQuery: options.onQuery });
  const contextOf = (descriptor: { name: string }) =>
    createModuleContext(router, catalog.modules.find((m) => m.name === descriptor.name)!, logger);

  const audit = auditModule.create(contextOf(auditModule), {});
  const permissions = permissionsModule.create(contextOf(permissionsModule), { audit });
  const email = emailModule.create(contextOf(emailModule), {
    audit,
    options: { environment, ...options.email },
    // Filled with auth, created after email (auth depends on email): asked only once both exist.
    recipients: {
      emailOf: (userId) => auth.emailOf(userId),
      userIdOf: (address) => auth.userIdOf(address),
    },
  });
  const production = environment === "production";
  const secret = options.auth?.secret ?? (production ? "" : randomBytes(32).toString("base64url"));
  const baseUrl = options.auth?.baseUrl ?? "http://localhost:3000";
  const auth = authModule.create(contextOf(authModule), {
    audit,
    permissions,
    email,
    production,
    placements: createTenantPlacements(router),
    options: {
      ...options.auth,
      secret,
      baseUrl,
      trustedOrigins: options.auth?.trustedOrigins ?? [new URL(baseUrl).origin],
    },
  });
  const core: CoreModules = { audit, permissions, email, auth };
  const modules: Record<string, ModuleLifecycle> = {};
  for (const descriptor of extra) modules[descriptor.name] = descriptor.create(contextOf(descriptor), core);
  // Created in this order, stopped in the reverse one.
  const lifecycles: [string, ModuleLifecycle][] = [
    ["audit", audit],
    ["permissions", permissions],
    ["email", email],
    ["auth", auth],
    ...Object.entries(modules),
  ];

  return {
    router,
    logger,
    environment,
    auth,
    audit,
    email,
    permissions,
    /** Your modules (`createSdk({ modules })`), by name. */
    modules,
    /**
     * Runs `fn` in one unit of work across every module (and your own tables): all of it commits, or
     * none of it. Inside an open unit of work it becomes a savepoint.
     *
     * @example
     * await sdk.transaction(async () => {
     *   await db.insert(invoices).values(invoice);           // your schema, via sdk.db()
     *   await sdk.audit.recordAuditEvent({ action: "invoice.created" });
     * });
     */
    transaction: <T>(fn: () => Promise<T>) => router.transaction(fn),
    /**
     * Runs `fn` with rows scoped to one tenant (`"*"`: every tenant), for row-level security.
     *
     * @example
     * const roles = await sdk.withTenant(tenantId, () => sdk.permissions.listRoles());
     */
    withTenant: <T>(tenantId: string | null, fn: () => Promise<T>) => router.withTenant(tenantId, fn),
    /**
     * Runs `fn` with a request context (actor, tenant, request id) that audit events pick up.
     *
     * @example
     * await sdk.withContext({ actor: { type: "service", id: "billing" } }, () => work());
     */
    withContext: <T>(context: RequestContext, fn: () => T) => runWithContext(context, fn),
    /** The ambient context (request id, actor, tenant). */
    context: currentContext,
    /**
     * The drizzle handle of the main database, joined to the ambient unit of work: use it for tables
     * of your own schema so they commit with the modules' writes.
     *
     * @example
     * await sdk.db().insert(invoices).values({ userId, total });
     */
    db: (database = "main") => router.database(database),
    /**
     * Applies sv-sdk's migrations, your modules' and then yours (`migrations`) to every database of the topology, as
     * the owner (`databaseUrl`), and sets up the runtime login (`databaseAppUrl`). Idempotent; instances
     * starting together migrate once (an advisory lock). Call it before `seed()`.
     *
     * @example
     * const sdk = createSdk({ databaseUrl, databaseAppUrl, migrations: { folder: "./drizzle", schemas: ["billing"] } });
     * await sdk.migrate();
     * await sdk.seed();
     */
    migrate: (): Promise<MigrationReport[]> =>
      migrateTopology(topology, [
        ...extra.flatMap((module) => (module.migrations ? [{ module: module.name, ...module.migrations }] : [])),
        ...(options.migrations ? [options.migrations] : []),
      ]),
    /**
     * Seeds built-in roles and default email templates (idempotent) in every database of the
     * topology: a tenant moved to a database of its own finds the platform rows there too.
     */
    async seed() {
      for (const [name, module] of lifecycles) {
        if (!module.seed) continue;
        const { missing } = await contextOf({ name }).everywhere(() => module.seed!(), { tenant: null });
        for (const gap of missing)
          logger.warn("seeding skipped a database that could not answer", { module: name, ...gap });
      }
    },
    /** Stops background work and closes every pool (with a timeout: a dead connection cannot hang it). */
    async close() {
      for (const [, module] of [...lifecycles].reverse()) await module.stop?.();
      await router.close(5);
    },
  };
}

export type Sdk = ReturnType<typeof createSdk>;
