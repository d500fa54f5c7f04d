/**
 * The topologies this repository's suite runs in, chosen by `SV_TOPOLOGY` (README, "Tests"):
 *
 *   all-in-one     (default) every schema and every tenant in one database, `main`
 *   audit-split    the `audit` schema on `audit_db`, a database of a second PostgreSQL cluster
 *   tenants-split  tenants created on `tenant_db`, a database of a second PostgreSQL cluster
 *
 * The split topologies put their second database on a second real server, so nothing a test does can
 * pass by sharing one server's transactions, locks or catalog. The global setup starts that cluster
 * and migrates a template there as it does for main; tests get both through `inject`.
 */
import type { TopologyInput } from "../db/topology.js";
import type { ProvidedTestDatabase } from "./vitest.js";

export const TEST_TOPOLOGIES = ["all-in-one", "audit-split", "tenants-split"] as const;
export type TestTopologyName = (typeof TEST_TOPOLOGIES)[number];

/** The name of the split topologies' second database (the one on the second cluster). */
export const SECOND_DATABASE = { "audit-split": "audit_db", "tenants-split": "tenant_db" } as const;

/** What the global setup provides: the topology's name and, for a split one, the second cluster's databases. */
export interface ProvidedTestTopology {
  name: TestTopologyName;
  /** The second cluster's shared test database and template (split topologies only). */
  second?: ProvidedTestDatabase;
}

declare module "vitest" {
  export interface ProvidedContext {
    svTestTopology: ProvidedTestTopology;
  }
}

/** The value of `SV_TOPOLOGY`, checked: an unknown name fails the run with the names it could have been. */
export function testTopologyName(value: string | undefined): TestTopologyName {
  if (!value) return "all-in-one";
  if ((TEST_TOPOLOGIES as readonly string[]).includes(value)) return value as TestTopologyName;
  throw new Error(`SV_TOPOLOGY=${value} is not a test topology; use one of ${TEST_TOPOLOGIES.join(", ")}`);
}

interface Urls {
  url: string;
  appUrl?: string;
}

/**
 * The topology of `name` over a main database and (split topologies) a second one, or undefined for
 * all-in-one, whose SDKs are given `databaseUrl` as they always were.
 */
export function testTopologyInput(name: TestTopologyName, main: Urls, second?: Urls): TopologyInput | undefined {
  if (name === "all-in-one") return undefined;
  if (!second) throw new Error(`the ${name} topology needs its second database (did the global setup start it?)`);
  const database = SECOND_DATABASE[name];
  const databases = {
    main: { url: main.url, appUrl: main.appUrl },
    [database]: { url: second.url, appUrl: second.appUrl },
  };
  return name === "audit-split"
    ? { databases, schemas: { audit: database } }
    : { databases, tenants: { defaultDatabase: database } };
}
