/**
 * Shared set-up for this repository's tests, on top of `sv-sdk/testing` (src/testing.ts): an SDK and
 * app on the shared test database (running as its sv_app login) in the topology the run was started
 * with (`SV_TOPOLOGY`, src/testing/topologies.ts), owner connections for assertions that must see past
 * row-level security, each on the database that holds the rows asked about; two databases for a
 * tenant placed on one of its own.
 */
import postgres from "postgres";
import { afterAll, beforeAll, inject } from "vitest";
import { createApp, type AppOptions } from "../src/app.js";
import { databaseOf, parseTopology, type Topology } from "../src/db/topology.js";
import { createSdk, type Sdk, type SdkOptions } from "../src/index.js";
import {
  createIsolatedDatabase,
  type IsolatedDatabase,
  startTestDatabase,
  type TestDatabase,
} from "../src/testing/database.js";
import { cheapHashingTestSdkOptions, createTestTenant, createTestUser, type TestUser } from "../src/testing.js";
import { SECOND_DATABASE, testTopologyInput, type ProvidedTestTopology } from "../src/testing/topologies.js";

export {
  cheapHashingTestSdkOptions,
  cookieHeader,
  TEST_ORIGIN,
  testSdkOptions,
} from "../src/testing.js";
export type SignedInUser = TestUser;

/** The topology this run was started in (`SV_TOPOLOGY`), as the global setup provides it. */
export const testTopology = (): ProvidedTestTopology => inject("svTestTopology");

/** Owner connections (past row-level security) of a main database and the run's second one. */
function ownerConnections(main: { url: string }, second: { url: string } | undefined) {
  const { name } = testTopology();
  const options = { max: 2, onnotice: () => {} };
  const owner = postgres(main.url, options);
  const secondOwner = second && postgres(second.url, options);
  return {
    owner,
    /** The owner connection of a database of the run's topology, by its name there. */
    ofDatabase(database: string): postgres.Sql {
      if (database === "main") return owner;
      if (secondOwner && name !== "all-in-one" && database === SECOND_DATABASE[name]) return secondOwner;
      throw new Error(`no owner connection for database '${database}' in the ${name} topology`);
    },
    async end() {
      await owner.end({ timeout: 5 });
      await secondOwner?.end({ timeout: 5 });
    },
  };
}

/**
 * An SDK and app on the shared test database, in the run's topology, and `owner`, the owner
 * connection of main. An assertion about rows of a schema or a tenant asks `ownerSqlFor(schema)` or
 * `await ownerSqlForTenant(tenantId)`: in a split topology those rows are on the second cluster.
 * A test giving `options.topology` chooses its own topology.
 */
export function useTestSdk(options: Partial<SdkOptions> = {}, appOptions: AppOptions = {}) {
  const database = inject("svTestDatabase");
  const { name, second } = testTopology();
  const topology = testTopologyInput(name, database, second);
  const sdk = createSdk(cheapHashingTestSdkOptions(database, { ...(topology && { topology }), ...options }));
  const app = createApp(sdk, { logRequests: false, ...appOptions });
  const owners = ownerConnections(database, second);
  /** The owner connection of the database holding `schema`'s tables (those not placed per tenant). */
  const ownerSqlFor = (schema: string) => owners.ofDatabase(databaseOf(sdk.router.topology, schema));
  /** The owner connection of the database holding `tenantId`'s rows of `schema` (default: a tenant table's). */
  const ownerSqlForTenant = async (tenantId: string, schema = "auth") =>
    owners.ofDatabase((await sdk.router.placementOf(tenantId)) ?? databaseOf(sdk.router.topology, schema));
  afterAll(async () => {
    await sdk.close();
    await owners.end();
  });
  return { sdk, app, owner: owners.owner, ownerSqlFor, ownerSqlForTenant };
}

/** Databases of the run's topology cloned for one test file, for work that must really commit. */
export interface IsolatedTopology {
  /** main's clone: its URLs are what `testSdkOptions(db.main, ...)` takes. */
  main: IsolatedDatabase;
  /** The clone on the second cluster (split topologies only). */
  second?: IsolatedDatabase;
  /** `{ topology }` over both clones for a split topology (spread into SDK options), else `{}`. */
  placement: Partial<SdkOptions>;
  /** The clones' topology, parsed (main alone for all-in-one). */
  topology: Topology;
  /** Owner connection of main's clone. */
  owner: postgres.Sql;
  /** The owner connection of the clone holding `schema`'s tables. */
  ownerSqlFor(schema: string): postgres.Sql;
  /** The owner connection of a database of the topology, by name (`main`, `audit_db`, `tenant_db`). */
  ownerSqlOf(database: string): postgres.Sql;
  /** The owner connection of the clone holding `tenantId`'s rows of `schema`, as `sdk` places the tenant. */
  ownerSqlForTenant(sdk: Sdk, tenantId: string, schema?: string): Promise<postgres.Sql>;
  /** Closes the owner connections and drops the clones (close the SDKs on them first). */
  drop(): Promise<void>;
}

/**
 * Clones main's template and, in a split topology, the second cluster's: the isolated counterpart of
 * `useTestSdk`'s shared databases, in the same topology.
 *
 * @example
 * const db = await createIsolatedTopology();
 * const sdk = createSdk(cheapHashingTestSdkOptions(db.main, { ...db.placement, auth: { secret } }));
 */
export async function createIsolatedTopology(): Promise<IsolatedTopology> {
  const { name, second: secondTemplate } = testTopology();
  const [main, second] = await Promise.all([
    createIsolatedDatabase(inject("svTestDatabase")),
    secondTemplate ? createIsolatedDatabase(secondTemplate) : undefined,
  ]);
  const input = testTopologyInput(name, main, second);
  const topology = parseTopology(input ?? { databases: { main } });
  const owners = ownerConnections(main, second);
  return {
    main,
    second,
    placement: input ? { topology: input } : {},
    topology,
    owner: owners.owner,
    ownerSqlFor: (schema) => owners.ofDatabase(databaseOf(topology, schema)),
    ownerSqlOf: (database) => owners.ofDatabase(database),
    ownerSqlForTenant: async (sdk, tenantId, schema = "auth") =>
      owners.ofDatabase((await sdk.router.placementOf(tenantId)) ?? databaseOf(topology, schema)),
    async drop() {
      await owners.end();
      await Promise.all([main.drop(), second?.drop()]);
    },
  };
}

/**
 * The databases `schema`'s rows may rightly be on in the run's topology: the schema's own database
 * and, when new tenants go to another one (tenants-split), that one too. Not every database: a row
 * written where it should not be stays unseen, so the assertion looking for it fails.
 */
export function databasesOf(sdk: Sdk, schema: string): string[] {
  const { topology } = sdk.router;
  return [...new Set([databaseOf(topology, schema), topology.tenants.defaultDatabase])];
}

/**
 * Runs `fn` as platform work (every tenant's rows) on each of `databasesOf(sdk, schema)`, joined to
 * the open unit of work, and gathers what it returns: a read of rows wherever they rightly are.
 *
 * @example
 * const rows = await fromDatabasesOf(sdk, "audit", () => sdk.router.db("audit").select().from(auditLogs));
 */
export async function fromDatabasesOf<T>(sdk: Sdk, schema: string, fn: () => Promise<T[]>): Promise<T[]> {
  const rows: T[] = [];
  for (const database of databasesOf(sdk, schema)) {
    rows.push(...(await sdk.router.onDatabase(database, () => sdk.withTenant("*", fn))));
  }
  return rows;
}

/**
 * Waits (at most 10 s) until no database's outbox holds an effect: with `audit` on a database of its
 * own, committed events reach it through the relay a moment after the commit.
 */
export async function outboxSettled(sdk: Sdk): Promise<void> {
  const until = Date.now() + 10_000;
  while (!(await sdk.outbox.lag()).every((lag) => "pending" in lag && lag.pending === 0)) {
    if (Date.now() > until) throw new Error("the outbox still holds effects after 10 s");
    await sdk.outbox.drainOnce();
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** JSON request init for `app.request`. */
export function json(method: string, body: unknown, headers: Record<string, string> = {}): RequestInit {
  return { method, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) };
}

/** A verified, signed-in user (sv-sdk/testing's createTestUser). */
export const signedInUser = (sdk: Sdk, input?: Parameters<typeof createTestUser>[1]) => createTestUser(sdk, input);

/** A tenant owned by `owner` (sv-sdk/testing's createTestTenant). */
export const tenantOf = (sdk: Sdk, owner: TestUser, name?: string) => createTestTenant(sdk, owner, name);

/** Two databases for tests of a tenant placed on a database of its own. */
export interface TwoDatabases {
  /** `main` (control plane and every other tenant) and `tenant_db`, cloned from the migrated template. */
  main: IsolatedDatabase;
  tenantDb: IsolatedDatabase;
  /** Owner connections, past row-level security. */
  mainSql: postgres.Sql;
  tenantSql: postgres.Sql;
  /** `{ main, tenant_db }` with their sv_app logins, parsed. */
  topology: Topology;
}

/**
 * Two databases on a PostgreSQL cluster of the file's own, started before the file's tests (its own
 * `beforeAll` hooks, registered after this call, see them ready) and stopped after (its `afterAll`
 * hooks run first: close SDKs there).
 *
 * A cluster of its own, not clones on the run's shared one: these files move tenants, and creating a
 * logical replication slot waits for every write transaction open on the cluster — on the shared one,
 * the rolled-back units other files hold open for a whole test, so a move waited on whatever ran beside
 * it (and timed out under load). Here it waits only for the file's own.
 */
export function useTwoDatabases(connection: Record<string, string> = {}): TwoDatabases {
  const databases = {} as TwoDatabases;
  let cluster: TestDatabase | undefined;
  beforeAll(async () => {
    cluster = await startTestDatabase();
    const [main, tenantDb] = await Promise.all([createIsolatedDatabase(cluster), createIsolatedDatabase(cluster)]);
    Object.assign(databases, {
      main,
      tenantDb,
      mainSql: postgres(main.url, { max: 2, onnotice: () => {}, connection }),
      tenantSql: postgres(tenantDb.url, { max: 2, onnotice: () => {}, connection }),
      topology: parseTopology({
        databases: {
          main: { url: main.url, appUrl: main.appUrl },
          tenant_db: { url: tenantDb.url, appUrl: tenantDb.appUrl },
        },
      }),
    });
  }, 120_000);
  afterAll(async () => {
    await databases.mainSql?.end({ timeout: 5 });
    await databases.tenantSql?.end({ timeout: 5 });
    await cluster?.stop();
  }, 60_000);
  return databases;
}

/** A node of `explain (format json)`: the fields plan tests look at. */
export interface PlanNode {
  "Node Type": string;
  "Index Name"?: string;
  "Parent Relationship"?: string;
  Plans?: PlanNode[];
}

/** The plan PostgreSQL picks for `query` on `sql` (a transaction, for its settings), every node flattened. */
export async function planNodes(
  sql: postgres.Sql | postgres.TransactionSql,
  query: { sql: string; params: unknown[] },
): Promise<PlanNode[]> {
  const nodesOf = (plan: PlanNode): PlanNode[] => [plan, ...(plan.Plans ?? []).flatMap(nodesOf)];
  const [row] = await sql.unsafe<{ "QUERY PLAN": { Plan: PlanNode }[] }[]>(
    `explain (format json) ${query.sql}`,
    query.params as never[],
  );
  return nodesOf(row!["QUERY PLAN"][0]!.Plan);
}
