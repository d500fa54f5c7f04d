/**
 * An honest split: with `audit` on a database of its own, a unit of work commits in one database
 * and its audit events reach the other through the outbox, exactly once, after the commit.
 *
 * Two real databases cloned from the migrated template: `main` and `tenant_db`, the audit schema
 * placed on tenant_db (the audit database). The relay is driven by hand (`drainOnce`) so each test
 * decides when effects are applied; a second router whose audit database URL points at a closed
 * port plays the relay of an instance that cannot reach it.
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cheapHashingTestSdkOptions, useTwoDatabases } from "../../test/support.js";
import { createCoreRouter } from "../core-modules.js";
import { createSdk, type Sdk } from "../index.js";
import { silentLogger } from "../logger.js";
import { authModule } from "../modules/auth/index.js";
import { createModuleContext } from "./module-context.js";
import { createOutboxRelay } from "./outbox-relay.js";
import { parseTopology, type TopologyInput } from "./topology.js";

const databases = useTwoDatabases();
let sdk: Sdk;
let split: TopologyInput;
const tenant = randomUUID();

const eventsIn = async (which: "main" | "audit", targetType: string) => {
  const owner = which === "main" ? databases.mainSql : databases.tenantSql;
  const rows = await owner<{ target_id: string; action: string }[]>`
    select target_id, action from audit.audit_logs where target_type = ${targetType} order by id`;
  return rows.map((r) => `${r.action}:${r.target_id}`);
};
const pendingIn = async (owner = databases.mainSql) =>
  (await owner<{ n: number }[]>`select count(*)::int as n from platform.outbox`)[0]!.n;

beforeAll(async () => {
  const { main, tenantDb, mainSql } = databases;
  split = {
    databases: {
      main: { url: main.url, appUrl: main.appUrl },
      tenant_db: { url: tenantDb.url, appUrl: tenantDb.appUrl },
    },
    schemas: { audit: "tenant_db" },
  };
  sdk = createSdk(cheapHashingTestSdkOptions(main, { topology: split, outboxRelay: { autoStart: false } }));
  await mainSql`insert into auth.organizations (id, name, slug) values (${tenant}, 'org', ${`org-${tenant}`})`;
  // A commit that fails in main: a deferred check, evaluated at COMMIT (after the audit database
  // would already have committed, had the event gone there directly).
  await mainSql`create table public.commit_guard (id int primary key, parent int references public.commit_guard (id) deferrable initially deferred)`;
  await mainSql`grant select, insert on public.commit_guard to sv_app`;
}, 60_000);

afterAll(async () => {
  await sdk?.close();
});

describe("audit on a database of its own", () => {
  it("keeps no event of a unit whose main commit fails", async () => {
    const marker = randomUUID();
    // As production runs (no cross-database check): only the outbox keeps the unit whole.
    const production = createSdk(
      cheapHashingTestSdkOptions(databases.main, {
        topology: split,
        environment: "development",
        outboxRelay: { autoStart: false },
      }),
    );
    try {
      await expect(
        production.withTenant(tenant, async () => {
          await production.audit.recordAuditEvent({ action: "user.signed_up", target: { type: marker, id: "a" } });
          await production.db("main").execute(sql`insert into public.commit_guard values (1, 999)`);
        }),
      ).rejects.toThrow(/commit_guard/);
    } finally {
      await production.close();
    }
    await sdk.outbox.drainOnce();
    expect(await eventsIn("audit", marker)).toEqual([]);
    expect(await eventsIn("main", marker)).toEqual([]);
    expect(await pendingIn()).toBe(0);
  });

  it("applies a committed unit's events to the audit database once, not to main", async () => {
    const marker = randomUUID();
    await sdk.withTenant(tenant, () =>
      sdk.audit.recordAuditEvents([
        { action: "doc.created", target: { type: marker, id: "a" } },
        { action: "doc.created", tenantId: null, target: { type: marker, id: "b" } },
      ]),
    );
    expect(await pendingIn()).toBe(1); // committed with the unit, in main
    expect(await eventsIn("audit", marker)).toEqual([]);
    await sdk.outbox.drainOnce();
    await sdk.outbox.drainOnce();
    expect(await eventsIn("audit", marker)).toEqual(["doc.created:a", "doc.created:b"]);
    expect(await eventsIn("main", marker)).toEqual([]);
    expect(await pendingIn()).toBe(0);
  });

  it("keeps the events while the audit database cannot be reached, and applies them once when it can", async () => {
    const marker = randomUUID();
    await sdk.withTenant(tenant, () =>
      sdk.audit.recordAuditEvent({ action: "doc.created", target: { type: marker, id: "late" } }),
    );
    // An instance whose audit database does not answer (nothing listens on port 1).
    const unreachable = createCoreRouter(
      parseTopology({
        ...split,
        databases: {
          ...split.databases,
          tenant_db: {
            url: "postgres://sv_app:x@127.0.0.1:1/none",
            appUrl: "postgres://sv_app:x@127.0.0.1:1/none",
            pool: { connectTimeoutSeconds: 1 },
          },
        },
      }),
    );
    try {
      await createOutboxRelay(unreachable).drainOnce("main");
    } finally {
      await unreachable.close(1);
    }
    expect(await eventsIn("audit", marker)).toEqual([]);
    const [waiting] = await databases.mainSql<{ last_error: string | null; claimed_until: Date | null }[]>`
      select last_error, claimed_until from platform.outbox`;
    expect(waiting?.last_error).toBe("DATABASE_UNAVAILABLE");
    // It comes back: the effect is due again after its backoff, then applied once.
    await databases.mainSql`update platform.outbox set claimed_until = null`;
    await Promise.all([sdk.outbox.drainOnce("main"), sdk.outbox.drainOnce("main")]);
    await sdk.outbox.drainOnce("main");
    expect(await eventsIn("audit", marker)).toEqual(["doc.created:late"]);
    expect(await pendingIn()).toBe(0);
  });

  it("does not apply an effect twice when the relay died between the target's commit and the source's", async () => {
    const marker = randomUUID();
    await sdk.withTenant(tenant, () =>
      sdk.audit.recordAuditEvent({ action: "doc.created", target: { type: marker, id: "once" } }),
    );
    // What a relay that died after applying leaves: the target applied the key (and its row), the
    // source still has the effect.
    const [effect] = await databases.mainSql<{ key: string }[]>`select key::text from platform.outbox`;
    await databases.tenantSql`insert into platform.outbox_applied (key) values (${effect!.key})`;
    await databases.tenantSql`insert into audit.audit_logs (tenant_id, actor_type, action, target_type, target_id)
      values (${tenant}, 'system', 'doc.created', ${marker}, 'once')`;
    await sdk.outbox.drainOnce();
    expect(await eventsIn("audit", marker)).toEqual(["doc.created:once"]);
    expect(await pendingIn()).toBe(0);
  });

  it("lands the dispatcher's email.sent events in the audit database", async () => {
    const send = randomUUID();
    await databases.mainSql`insert into email.email_sends (id, tenant_id, to_address, template_key, category, subject, html, text)
      values (${send}, ${tenant}, 'ada@example.com', 'welcome', 'transactional', 'Hi', '<p>Hi</p>', 'Hi')`;
    await sdk.email.dispatchOnce();
    await sdk.outbox.drainOnce();
    const sent = async (owner: typeof databases.mainSql) =>
      (
        await owner<{ n: number }[]>`select count(*)::int as n from audit.audit_logs
          where action = 'email.sent' and metadata->'sendIds' ? ${send}`
      )[0]!.n;
    expect(await sent(databases.tenantSql)).toBe(1);
    expect(await sent(databases.mainSql)).toBe(0);
  });

  it("reports how far each database's outbox is behind", async () => {
    await sdk.withTenant(tenant, () => sdk.audit.recordAuditEvent({ action: "doc.created" }));
    const lag = await sdk.outbox.lag();
    expect(lag).toEqual([
      { database: "main", pending: 1, oldestSeconds: expect.any(Number) },
      { database: "tenant_db", pending: 0, oldestSeconds: 0 },
    ]);
    await sdk.outbox.drainOnce();
    expect((await sdk.outbox.lag())[0]).toMatchObject({ pending: 0 });
  });
});

describe("a deleted user's copies", () => {
  it("go from every other database, with the rows that refer to them there, once the unit commits", async () => {
    const user = randomUUID();
    const insertUser = (owner: typeof databases.mainSql) =>
      owner`insert into auth.users (id, name, email) values (${user}, 'Ada', ${`${user}@example.com`})`;
    await insertUser(databases.mainSql);
    // What ensureReferenced leaves in a tenant's database: the copy, and an assignment keyed to it.
    await insertUser(databases.tenantSql);
    await databases.tenantSql`insert into auth.organizations (id, name, slug) values (${tenant}, 'org', ${`org-${tenant}`})`;
    const [role] = await databases.tenantSql<{ id: string }[]>`
      insert into permissions.roles (tenant_id, name) values (${tenant}, ${`r-${user}`}) returning id`;
    await databases.tenantSql`insert into permissions.user_roles (user_id, role_id, tenant_id) values (${user}, ${role!.id}, ${tenant})`;
    const auth = createModuleContext(sdk.router, authModule, silentLogger);
    await sdk.transaction(async () => {
      await sdk.db("main").execute(sql`delete from auth.users where id = ${user}`);
      await auth.removeCopies("users", [{ id: user }]);
    });
    expect(await databases.tenantSql`select 1 from auth.users where id = ${user}`).toHaveLength(1);
    await sdk.outbox.drainOnce();
    expect(await databases.tenantSql`select 1 from auth.users where id = ${user}`).toHaveLength(0);
    expect(await databases.tenantSql`select 1 from permissions.user_roles where user_id = ${user}`).toHaveLength(0);
    expect(await pendingIn()).toBe(0);
  });
});

describe("a unit of work that writes to two databases (test SDK options)", () => {
  it("fails before committing, naming both databases", async () => {
    const marker = randomUUID();
    await expect(
      sdk.transaction(async () => {
        await sdk.db("main").execute(sql`insert into public.commit_guard values (2, null)`);
        await sdk.db("tenant_db").execute(sql`select set_config('sv.tenant_id', '*', true)`);
        await sdk
          .db("tenant_db")
          .execute(
            sql`insert into audit.audit_logs (actor_type, action, target_type) values ('system', 'doc.created', ${marker})`,
          );
      }),
    ).rejects.toThrow(/wrote to 'main' and 'tenant_db'.*outbox/);
    expect(await databases.mainSql`select 1 from public.commit_guard where id = 2`).toHaveLength(0);
    expect(await eventsIn("audit", marker)).toEqual([]);
  });
});
