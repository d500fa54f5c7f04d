/**
 * A new tenant is placed before its first row is written: with `tenants.defaultDatabase` set, a tenant
 * created through better-auth's organization create lands on that database — its placement row on
 * main, its rows (the owner's role, its audit event) on the placed database — and the runtime can
 * place only a tenant just created (no member, no placement yet).
 */
import { randomUUID } from "node:crypto";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { json, signedInUser, tenantOf, cheapHashingTestSdkOptions, useTwoDatabases } from "../../test/support.js";
import { createApp } from "../app.js";
import { createSdk, type Sdk } from "../index.js";

const databases = useTwoDatabases();
let sdk: Sdk;
let app: ReturnType<typeof createApp>;

const count = async (sql: postgres.Sql, query: string, ...params: unknown[]) => {
  const [row] = await sql.unsafe<{ n: number }[]>(`select count(*)::int as n from ${query}`, params as never[]);
  return row!.n;
};

beforeAll(async () => {
  sdk = createSdk(
    cheapHashingTestSdkOptions(databases.main, {
      topology: { ...databases.topology, tenants: { defaultDatabase: "tenant_db" } },
    }),
  );
  await sdk.seed();
  app = createApp(sdk, { logRequests: false });
}, 60_000);

afterAll(async () => {
  await sdk?.close();
});

describe("tenants.defaultDatabase", () => {
  it("places a new tenant on that database before its rows: the owner's role and its audit event land there", async () => {
    const { mainSql, tenantSql } = databases;
    const owner = await signedInUser(sdk);
    const { tenant, headers } = await tenantOf(sdk, owner);

    const [placement] = await mainSql<{ database: string; state: string }[]>`
      select database, state from platform.tenant_placements where tenant_id = ${tenant.id}`;
    expect(placement).toEqual({ database: "tenant_db", state: "active" });
    // The organization is control plane (main); the owner's tenant role is the tenant's row.
    expect(await count(mainSql, "auth.organizations where id = $1", tenant.id)).toBe(1);
    expect(await count(tenantSql, "permissions.user_roles where tenant_id = $1", tenant.id)).toBe(1);
    expect(await count(mainSql, "permissions.user_roles where tenant_id = $1", tenant.id)).toBe(0);
    const [created] = await tenantSql<{ metadata: { placement: unknown } }[]>`
      select metadata from audit.audit_logs where action = 'tenant.created' and tenant_id = ${tenant.id}`;
    expect(created?.metadata.placement).toEqual({ database: "tenant_db" });
    expect(await count(mainSql, "audit.audit_logs where tenant_id = $1", tenant.id)).toBe(0);

    // Used over HTTP at once: a role of the tenant is written where it lives.
    const role = await app.request(
      "/api/v1/permissions/roles",
      json("POST", { name: "editor", permissions: ["docs:write"] }, headers),
    );
    expect(role.status).toBe(201);
    expect(await count(tenantSql, "permissions.roles where tenant_id = $1 and name = 'editor'", tenant.id)).toBe(1);
    expect(await count(mainSql, "permissions.roles where tenant_id = $1", tenant.id)).toBe(0);
  });

  it("places a tenant created over HTTP (better-auth's organization create, in the request's unit of work)", async () => {
    const { mainSql, tenantSql } = databases;
    const owner = await signedInUser(sdk);
    const created = await app.request(
      "/api/auth/organization/create",
      json("POST", { name: "Acme", slug: `acme-${randomUUID()}` }, owner.headers),
    );
    expect(created.status).toBe(200);
    const { id } = (await created.json()) as { id: string };
    expect(await count(mainSql, "platform.tenant_placements where tenant_id = $1 and database = 'tenant_db'", id)).toBe(
      1,
    );
    expect(await count(tenantSql, "permissions.user_roles where tenant_id = $1", id)).toBe(1);
    expect(await count(tenantSql, "auth.organizations where id = $1", id)).toBe(1);
  });

  it("leaves a tenant on main (no placement row) when the default is main", async () => {
    const onMain = createSdk(cheapHashingTestSdkOptions(databases.main, { topology: databases.topology }));
    try {
      const owner = await signedInUser(onMain);
      const { tenant } = await tenantOf(onMain, owner);
      expect(await count(databases.mainSql, "platform.tenant_placements where tenant_id = $1", tenant.id)).toBe(0);
      expect(await count(databases.mainSql, "permissions.user_roles where tenant_id = $1", tenant.id)).toBe(1);
    } finally {
      await onMain.close();
    }
  });
});

describe("platform.place_new_tenant (the runtime's only way to write a placement)", () => {
  let app_: postgres.Sql;
  beforeAll(() => {
    app_ = postgres(databases.main.appUrl, { max: 1, onnotice: () => {} });
  });
  afterAll(async () => {
    await app_?.end({ timeout: 5 });
  });

  it("refuses to re-place a tenant that exists (moving one is an operator's tenant:move)", async () => {
    const owner = await signedInUser(sdk);
    const { tenant } = await tenantOf(sdk, owner);
    await expect(app_`select platform.place_new_tenant(${tenant.id}, 'main')`).rejects.toMatchObject({
      code: "42501",
    });
    await expect(app_`update platform.tenant_placements set database = 'main'`).rejects.toMatchObject({
      code: "42501",
    });
  });

  it("refuses a tenant that does not exist, and a name that is not a database's", async () => {
    await expect(app_`select platform.place_new_tenant(${randomUUID()}, 'tenant_db')`).rejects.toMatchObject({
      code: "23503",
    });
    const owner = await signedInUser(sdk);
    const { tenant } = await tenantOf(sdk, owner);
    await expect(app_`select platform.place_new_tenant(${tenant.id}, 'x; drop')`).rejects.toMatchObject({
      code: "22023",
    });
  });
});
