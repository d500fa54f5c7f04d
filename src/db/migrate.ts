/**
 * Applies the SQL migrations in `drizzle/` to every database of the topology, each under an advisory
 * lock so that instances starting together migrate once. Applying twice changes nothing.
 *
 * A database that does not answer is not waited for: each is first asked, within a few seconds,
 * whether it is there. `migrateTopology` reports an unreachable one (and the caller decides: the
 * CLI exits 1, the server starts without it), or waits for it a bounded time when asked to.
 *
 * It is also where the runtime login is set up (no migration file may hold a password): given the
 * login's URL, the owner makes its user able to log in with its password, then logs in as it and
 * checks that it cannot become anything more than sv_app.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import { drizzle } from "drizzle-orm/postgres-js";
import { migrate } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import { RUNTIME_ROLE } from "./router.js";
import type { Topology } from "./topology.js";
import { appliedMigrationCount, journalLength, MIGRATIONS_FOLDER, shippedMigrationCount } from "./migration-count.js";

/** Arbitrary but fixed: every sv-sdk process migrating one database takes the same lock. */
const MIGRATION_LOCK_KEY = 7_246_155_347;

export interface MigrationReport {
  database: string;
  appliedBefore: number;
  appliedNow: number;
  total: number;
  /** Migrations beside sv-sdk's (yours, your modules'), each with the same counts from its own ledger. */
  extra?: ExtraMigrationReport[];
}

export interface ExtraMigrationReport {
  /** "yours", or the module's name. */
  name: string;
  appliedBefore: number;
  appliedNow: number;
  total: number;
}

/**
 * Migrations beside sv-sdk's — yours (`createSdk({ migrations })`) and your modules' (a descriptor's
 * `migrations`) — applied after sv-sdk's on every database of the topology, under the same lock. Each
 * folder has a ledger of its own beside sv-sdk's `drizzle.__drizzle_migrations` (yours:
 * `drizzle.__app_migrations`; a module's: `drizzle.__module_<name>_migrations`): drizzle's migrator
 * applies what is newer than a ledger's last entry, so two folders in one ledger would hide each
 * other's migrations whenever their timestamps interleave.
 */
export interface AppMigrations {
  /** Whose they are: a module's name; yours when omitted. */
  module?: string;
  /** A drizzle-kit migrations folder (`out` in drizzle.config.ts): `meta/_journal.json` and the SQL files. */
  folder: string;
  /**
   * Schemas of yours the runtime role (sv_app) reads and writes: after migrating, each gets
   * `platform.grant_to_runtime(schema)` — usage, table and sequence rights, now and for later tables.
   */
  schemas?: readonly string[];
}

export const APP_MIGRATIONS_TABLE = "__app_migrations";

const ledgerOf = (extra: AppMigrations) =>
  extra.module ? `__module_${extra.module}_migrations` : APP_MIGRATIONS_TABLE;

export interface MigrateOptions {
  /**
   * URL of the runtime login (DATABASE_APP_URL, a topology database's `appUrl`). Its user is `sv_app`
   * itself or a login of its own, which is created if missing and made a member of sv_app; either way
   * it can then log in with the URL's password. An existing role that can become the owner, a
   * superuser or anything that bypasses row-level security is refused, never altered.
   */
  appUrl?: string;
  /** Migrations beside sv-sdk's (your modules', then yours), applied after sv-sdk's in this order. */
  extra?: readonly AppMigrations[];
}

export async function migrateDatabase(
  database: string,
  url: string,
  options: MigrateOptions = {},
): Promise<MigrationReport> {
  let report: MigrationReport;
  // One connection, so the advisory lock and the migration share a session.
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
    try {
      const appliedBefore = await appliedMigrationCount(sql);
      await migrate(drizzle(sql), { migrationsFolder: MIGRATIONS_FOLDER });
      const appliedNow = await appliedMigrationCount(sql);
      const extra: ExtraMigrationReport[] = [];
      for (const folder of options.extra ?? []) extra.push(await migrateExtra(sql, folder));
      // A login that already works is left alone: instances restarting change no role (roles are
      // cluster-wide, and concurrent ALTER ROLEs of one role fail).
      if (options.appUrl && !(await canLogIn(options.appUrl))) await setUpRuntimeLogin(sql, options.appUrl);
      report = {
        database,
        appliedBefore,
        appliedNow,
        total: shippedMigrationCount(),
        ...(extra.length > 0 && { extra }),
      };
    } finally {
      await sql`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`;
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
  if (options.appUrl) await verifyRuntimeLogin(database, options.appUrl);
  return report;
}

/** Applies one folder in its own ledger, then opens its schemas to the runtime role. */
async function migrateExtra(sql: postgres.Sql, extra: AppMigrations): Promise<ExtraMigrationReport> {
  const total = journalLength(extra.folder);
  const ledger = ledgerOf(extra);
  const appliedBefore = await appliedMigrationCount(sql, ledger);
  await migrate(drizzle(sql), { migrationsFolder: extra.folder, migrationsTable: ledger, migrationsSchema: "drizzle" });
  for (const schema of extra.schemas ?? []) await sql`select platform.grant_to_runtime(${schema})`;
  return { name: extra.module ?? "yours", appliedBefore, appliedNow: await appliedMigrationCount(sql, ledger), total };
}

/** A database of the topology that could not be reached, so was not migrated. */
export interface UnreachableDatabase {
  database: string;
  /** Why, in a word or two (ECONNREFUSED, no answer within 3 s, …): no host or user is named. */
  unreachable: string;
}

export type TopologyMigration = MigrationReport | UnreachableDatabase;

export const isUnreachable = (report: TopologyMigration): report is UnreachableDatabase => "unreachable" in report;

export interface MigrateTopologyOptions {
  /**
   * What to do with a database that does not answer: `"throw"` (default), or `"report"` — it is
   * skipped and reported, and the others are migrated. The control plane (main) is always required.
   */
  unreachable?: "throw" | "report";
  /** Wait up to this long for unreachable databases to answer (checked every second) before giving up on them. */
  waitMs?: number;
  /** Told once per database that does not answer, before any wait. */
  onUnreachable?: (database: string, reason: string) => void;
}

/** How long a database has to answer `select 1` before it is called unreachable. */
const REACHABLE_WITHIN_MS = 3_000;

/** Undefined when the database answers within `timeoutMs`, else why not (a code, never the URL). */
export async function unreachableReason(url: string, timeoutMs = REACHABLE_WITHIN_MS): Promise<string | undefined> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: Math.ceil(timeoutMs / 1000) });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`no answer within ${timeoutMs / 1000} s`), timeoutMs);
    });
    const answer = sql`select 1`.then(
      () => undefined,
      (error: { code?: string }) => (typeof error.code === "string" ? error.code : "connection failed"),
    );
    return await Promise.race([answer, timeout]);
  } finally {
    clearTimeout(timer);
    // A frozen server keeps the connection half-open: do not wait for a goodbye.
    await sql.end({ timeout: 0 }).catch(() => undefined);
  }
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Migrates every database of the topology (dedicated tenant databases are named there too): sv-sdk's
 * migrations, then `extra` (your modules', yours) — every database holds every schema, so a tenant
 * moved to a database of its own finds those tables there too. Each database is asked first whether
 * it answers: see `MigrateTopologyOptions` for one that does not.
 */
export function migrateTopology(
  topology: Topology,
  extra?: readonly AppMigrations[],
  options?: MigrateTopologyOptions & { unreachable?: "throw" },
): Promise<MigrationReport[]>;
export function migrateTopology(
  topology: Topology,
  extra: readonly AppMigrations[],
  options: MigrateTopologyOptions,
): Promise<TopologyMigration[]>;
export async function migrateTopology(
  topology: Topology,
  extra: readonly AppMigrations[] = [],
  options: MigrateTopologyOptions = {},
): Promise<TopologyMigration[]> {
  const reports: TopologyMigration[] = [];
  const waitUntil = Date.now() + (options.waitMs ?? 0);
  for (const [name, config] of Object.entries(topology.databases)) {
    let reason = await unreachableReason(config.url);
    if (reason !== undefined) options.onUnreachable?.(name, reason);
    while (reason !== undefined && Date.now() < waitUntil) {
      await pause(Math.min(1_000, Math.max(0, waitUntil - Date.now())));
      reason = await unreachableReason(config.url);
    }
    if (reason !== undefined) {
      if (options.unreachable !== "report" || name === "main") {
        throw new Error(`database '${name}' is unreachable (${reason}): nothing was migrated there`);
      }
      reports.push({ database: name, unreachable: reason });
      continue;
    }
    reports.push(await migrateDatabase(name, config.url, { appUrl: config.appUrl, extra }));
  }
  const reached = reports.flatMap((r) => ("unreachable" in r || r.database === "main" ? [] : [r.database]));
  await recordResidents(topology, reached);
  return reports;
}

/**
 * Each database's residents (drizzle/0024) from main's placements, for tenants placed before they
 * were kept: a router enters a tenant where memory says its rows are, and that database must know
 * it holds them. Rows already there (a move's, a creation's) are left as they are.
 */
async function recordResidents(topology: Topology, databases: string[]): Promise<void> {
  if (databases.length === 0) return;
  const main = postgres(topology.databases.main!.url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    const placed = await main<{ tenant: string; database: string; state: string }[]>`
      select tenant_id::text as tenant, database, state from platform.tenant_placements where database <> 'main'`;
    for (const database of databases) {
      const here = placed.filter((p) => p.database === database);
      if (here.length === 0) continue;
      const sql = postgres(topology.databases[database]!.url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
      try {
        await sql`insert into platform.tenant_residents (tenant_id, state)
                  select * from unnest(${here.map((p) => p.tenant)}::uuid[], ${here.map((p) => p.state)}::text[])
                  on conflict (tenant_id) do nothing`;
      } finally {
        await sql.end({ timeout: 5 });
      }
    }
  } finally {
    await main.end({ timeout: 5 });
  }
}

/**
 * A runtime login owns nothing: not a schema, table or function outside PostgreSQL's own and the
 * public schema (an owner can change what it owns, policies and grants included).
 */
const OWNS_SOMETHING = `(n.nspname not in ('pg_catalog', 'information_schema', 'public') and n.nspname not like 'pg\\_%')`;

function loginOf(appUrl: string): { user: string; password?: string } {
  const url = new URL(appUrl);
  const user = decodeURIComponent(url.username);
  if (!user)
    throw new Error(
      "the runtime login URL (DATABASE_APP_URL / appUrl) names no user: give sv_app, or a login of its own",
    );
  return { user, password: url.password ? decodeURIComponent(url.password) : undefined };
}

const identifier = (name: string) => `"${name.replaceAll('"', '""')}"`;
const literal = (value: string) => `'${value.replaceAll("'", "''")}'`;

/**
 * The password as a SCRAM-SHA-256 verifier, which PostgreSQL stores as given: the password itself
 * never reaches the server, so no statement log can show it. Derived from the password's UTF-8 bytes,
 * as postgres.js derives its proof (no SASLprep), so the runtime pool logs in with it.
 */
function scramVerifier(password: string): string {
  const iterations = 4096;
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(password, salt, iterations, 32, "sha256");
  const storedKey = createHash("sha256").update(createHmac("sha256", salted).update("Client Key").digest()).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

/** Whether the URL's login gets in (false when it is refused, missing or has another password). */
async function canLogIn(appUrl: string): Promise<boolean> {
  const sql = postgres(appUrl, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    await sql`select 1`;
    return true;
  } catch (error) {
    // 28P01 wrong password; 28000 no such role, not allowed to log in, or no pg_hba.conf entry.
    const code = (error as { code?: string }).code;
    if (code === "28P01" || code === "28000") return false;
    throw error;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/**
 * What makes a role dangerous as a runtime login, for every role `role` can act as (itself and every
 * role it is a member of): one line per role that is a superuser, may create roles or databases,
 * replicate, bypass row-level security, or owns this database or sv-sdk's tables.
 */
async function powersOf(sql: postgres.Sql, role: string): Promise<string[]> {
  const rows = await sql<{ rolname: string; powers: string[] }[]>`
    select r.rolname, array_remove(array[
      case when r.rolsuper then 'superuser' end,
      case when r.rolcreaterole then 'CREATEROLE' end,
      case when r.rolcreatedb then 'CREATEDB' end,
      case when r.rolreplication then 'REPLICATION' end,
      case when r.rolbypassrls then 'BYPASSRLS' end,
      case when r.oid = d.datdba then 'owner of the database' end,
      case when exists (select 1 from pg_namespace n where n.nspowner = r.oid and ${sql.unsafe(OWNS_SOMETHING)})
             or exists (select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
                        where c.relowner = r.oid and ${sql.unsafe(OWNS_SOMETHING)})
             or exists (select 1 from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                        where p.proowner = r.oid and ${sql.unsafe(OWNS_SOMETHING)})
           then 'owner of sv-sdk''s schemas' end
    ], null) as powers
    from pg_roles r, pg_database d
    where d.datname = current_database() and pg_has_role(${role}::name, r.oid, 'MEMBER')
    order by r.rolname`;
  return rows
    .filter((r) => r.powers.length > 0)
    .map((r) => `${r.rolname === role ? r.rolname : `${role} → ${r.rolname}`} (${r.powers.join(", ")})`);
}

const NOT_A_RUNTIME_LOGIN =
  "the runtime must log in as a role that can neither become the owner nor bypass row-level security: " +
  "name sv_app, or a login of its own (the migration creates it as a member of sv_app only)";

/** As the owner: creates the login if missing, lets it log in with the URL's password, makes it act as sv_app. */
async function setUpRuntimeLogin(owner: postgres.Sql, appUrl: string): Promise<void> {
  const { user, password } = loginOf(appUrl);
  const [existing] = await owner<
    { exists: boolean }[]
  >`select exists (select 1 from pg_roles where rolname = ${user}) as exists`;
  if (existing!.exists) {
    const powers = await powersOf(owner, user);
    if (powers.length > 0) throw new Error(`DATABASE_APP_URL logs in as ${powers.join("; ")}: ${NOT_A_RUNTIME_LOGIN}`);
  }
  const withPassword = password === undefined ? "" : ` PASSWORD ${literal(scramVerifier(password))}`;
  try {
    if (!existing!.exists) {
      try {
        // CREATE ROLE's defaults: NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT.
        await owner.unsafe(`create role ${identifier(user)} with login${withPassword}`);
      } catch (error) {
        if ((error as { code?: string }).code !== "42710") throw error; // another database of the cluster created it
      }
    }
    await owner.unsafe(`alter role ${identifier(user)} with login${withPassword}`);
    if (user !== RUNTIME_ROLE) await owner.unsafe(`grant ${identifier(RUNTIME_ROLE)} to ${identifier(user)}`);
  } catch (error) {
    // The statement carries the password's verifier: only PostgreSQL's own sentence goes on.
    throw new Error(
      `the owner could not set up the runtime login "${user}" (${(error as Error).message}); ` +
        `create it yourself: CREATE ROLE ${identifier(user)} LOGIN PASSWORD '…' IN ROLE ${RUNTIME_ROLE}`,
    );
  }
}

/** Logged in as the runtime login: it acts as sv_app and can become nothing more. */
async function verifyRuntimeLogin(database: string, appUrl: string): Promise<void> {
  const { user } = loginOf(appUrl);
  const sql = postgres(appUrl, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    let acts: boolean;
    let powers: string[];
    try {
      const [row] = await sql<{ acts: boolean }[]>`select pg_has_role(session_user, ${RUNTIME_ROLE}, 'USAGE') as acts`;
      acts = row!.acts;
      powers = await powersOf(sql, user);
    } catch (error) {
      throw new Error(
        `database '${database}': cannot log in as the runtime login "${user}": ${(error as Error).message}`,
      );
    }
    if (powers.length > 0)
      throw new Error(
        `database '${database}': DATABASE_APP_URL logs in as ${powers.join("; ")}: ${NOT_A_RUNTIME_LOGIN}`,
      );
    if (!acts) throw new Error(`database '${database}': the runtime login "${user}" is not sv_app nor a member of it`);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

export function describeMigration(report: TopologyMigration): string {
  if (isUnreachable(report)) return `${report.database}: unreachable (${report.unreachable}), skipped — not migrated`;
  const counts = (c: { appliedBefore: number; appliedNow: number; total: number }) => {
    const applied = c.appliedNow - c.appliedBefore;
    return applied === 0
      ? `up to date (${c.appliedNow}/${c.total} migrations)`
      : `applied ${applied} migration(s), now ${c.appliedNow}/${c.total}`;
  };
  const extra = (report.extra ?? []).map((e) => `; ${e.name}: ${counts(e)}`).join("");
  return `${report.database}: ${counts(report)}${extra}`;
}
