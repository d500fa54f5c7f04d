/**
 * The app the pool scenarios run (pool exhaustion, terminated backends): a cluster of their own, the
 * fault route mounted, one user with a tenant; and the requests they send it.
 */
import { inject } from "vitest";
import type postgres from "postgres";
import { createTestTenant, createTestUser } from "../../../src/testing.js";
import { database, ownerSql, startApp, type RunningApp } from "./app.js";
import { FAULT_WRITE_PATH, mountFaultRoutes } from "./fault-routes.js";
import { send } from "./http.js";
import { type Cleanup, startCluster } from "./processes.js";

export interface FaultApp {
  app: RunningApp;
  owner: postgres.Sql;
  /** Signed in, acting in the user's tenant. */
  tenantHeaders: Record<string, string>;
}

export async function startFaultApp(clusterName: string, cleanup: Cleanup): Promise<FaultApp> {
  const { root, golden } = inject("faults");
  const cluster = await startCluster(root, golden, clusterName, cleanup);
  const owner = ownerSql(cluster.url, cleanup);
  const app = await startApp({ databases: { main: database(cluster.url) } }, cleanup, { mount: mountFaultRoutes });
  const ada = await createTestUser(app.sdk);
  const { headers: tenantHeaders } = await createTestTenant(app.sdk, ada);
  return { app, owner, tenantHeaders };
}

/** The scenarios' requests, against the app `current()` returns (started in a `beforeAll`). */
export function faultRequests(current: () => Pick<FaultApp, "app" | "tenantHeaders">) {
  return {
    /** The fault route: a row and its audit event, then `sleeps` seconds of pg_sleep holding the connection. */
    write: (marker: string, sleeps: number[] = []) =>
      send(`${current().app.url}${FAULT_WRITE_PATH}`, {
        method: "POST",
        headers: { origin: current().app.origin },
        body: { marker, sleeps },
        timeoutMs: 20_000,
      }),
    readRoles: () =>
      send(`${current().app.url}/api/v1/permissions/roles?limit=5`, {
        headers: current().tenantHeaders,
        timeoutMs: 20_000,
      }),
    createRole: (name: string) =>
      send(`${current().app.url}/api/v1/permissions/roles`, {
        method: "POST",
        headers: current().tenantHeaders,
        body: { name, permissions: ["docs:read"] },
        timeoutMs: 20_000,
      }),
  };
}
