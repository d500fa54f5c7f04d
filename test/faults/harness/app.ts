/**
 * The app as users run it, in this process, behind a real HTTP server (startServer): rate limiting
 * on, the cookie cache on, the real password cost, a small pool, the listeners `npm start` starts.
 * Only the topology (and so the pool) is the scenario's.
 */
import { randomUUID } from "node:crypto";
import postgres from "postgres";
import { createApp, type App, type AppOptions } from "../../../src/app.js";
import type { TopologyInput } from "../../../src/db/topology.js";
import { startServer } from "../../../src/http/serve.js";
import { createSdk, type Sdk } from "../../../src/index.js";
import { createJsonLogger } from "../../../src/logger.js";
import type { Cleanup } from "./processes.js";

/** The pool every scenario runs with: small, as the DESIGN asks for fault tests. */
export const POOL_MAX = 5;

export interface RunningApp {
  sdk: Sdk;
  /** The app's warnings and errors (JSON lines), for failure messages and diagnoses. */
  logs: string[];
  url: string;
  /** The Origin the app trusts (its base URL's). */
  origin: string;
}

export async function startApp(
  topology: TopologyInput,
  cleanup: Cleanup,
  options: { mount?: (app: App, sdk: Sdk) => void; app?: AppOptions } = {},
): Promise<RunningApp> {
  const logs: string[] = [];
  const logger = createJsonLogger("warn", (line) => void logs.push(line.trimEnd()));
  const sdk = createSdk({ topology, environment: "test", logger, auth: { secret: randomUUID() + randomUUID() } });
  cleanup.defer("sdk", () => sdk.close());
  const app = createApp(sdk, { logRequests: false, ...options.app });
  options.mount?.(app, sdk);
  await sdk.auth.listen();
  const running = await startServer(app.fetch, { port: 0 });
  cleanup.defer("http server", () => running.close({ graceMs: 1000 }));
  return { sdk, logs, url: running.url, origin: "http://localhost:3000" };
}

/** A database with the scenario's pool (max POOL_MAX, everything else at its default). */
export const database = (url: string) => ({ url, pool: { max: POOL_MAX } });

/** An owner connection for assertions (past row-level security), named so it is not counted as the app's. */
export function ownerSql(url: string, cleanup: Cleanup): postgres.Sql {
  const sql = postgres(url, {
    max: 2,
    onnotice: () => {},
    connect_timeout: 5,
    connection: { application_name: "sv-faults-owner" },
  });
  cleanup.defer("owner connection", () => sql.end({ timeout: 2 }));
  return sql;
}

export interface AppConnections {
  /** Connections of the pool (every 'sv-sdk' connection but the LISTEN ones). */
  pool: number;
  /** The LISTEN connections (postgres.js keeps one per client, beside the pool). */
  listeners: number;
  total: number;
}

/** The app's connections to the database (application_name 'sv-sdk'), split as above. */
export async function appConnections(owner: postgres.Sql): Promise<AppConnections> {
  const [row] = await owner<{ total: number; listeners: number }[]>`
    select count(*)::int as total, count(*) filter (where query ilike 'listen %')::int as listeners
    from pg_stat_activity where datname = current_database() and application_name = 'sv-sdk'`;
  return { total: row!.total, listeners: row!.listeners, pool: row!.total - row!.listeners };
}

export interface RolePairs {
  /** Role names whose row and `role.created` audit event both committed. */
  committed: Set<string>;
  /** Names with one of the two only. */
  partial: string[];
}

/**
 * What a real mutation committed: each role of `tenantId` named with `prefix`, and its `role.created`
 * audit event (same transaction), read as the owner of the database the tenant lives on.
 */
export async function rolePairs(owner: postgres.Sql, tenantId: string, prefix: string): Promise<RolePairs> {
  const rows = await owner<{ name: string | null; role_id: string | null; audit_id: string | null }[]>`
    with r as (select id::text as id, name from permissions.roles where tenant_id = ${tenantId} and name like ${`${prefix}%`}),
         a as (select target_id as id, changes->'after'->>'name' as name from audit.audit_logs
               where action = 'role.created' and tenant_id = ${tenantId} and changes->'after'->>'name' like ${`${prefix}%`})
    select coalesce(r.name, a.name) as name, r.id as role_id, a.id as audit_id from r full join a on a.id = r.id`;
  const committed = new Set<string>();
  const partial: string[] = [];
  for (const row of rows) {
    if (row.role_id && row.audit_id) committed.add(row.name!);
    else partial.push(`${row.name} (${row.role_id ? "role without its audit event" : "audit event without its role"})`);
  }
  return { committed, partial };
}
