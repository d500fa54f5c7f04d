/**
 * `POST /api/v1/tenants` against three real databases: `main`, `tenant_db` (region `eu`) and `stale`
 * (region `old`, one migration behind). A tenant created in a region or database lives there from its
 * first row; choosing a placement needs `tenants:place` globally; unknown names are 422, a database
 * that is not migrated 409, and nothing is written when the request is refused.
 */
import { randomUUID } from "node:crypto";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createApp } from "../../app.js";
import { createSdk, type Sdk } from "../../index.js";
import { createTestRole } from "../../testing.js";
import { createIsolatedDatabase, type IsolatedDatabase } from "../../testing/database.js";
import {
  cheapHashingTestSdkOptions,
  json,
  signedInUser,
  useTwoDatabases,
  type SignedInUser,
} from "../../../test/support.js";

const databases = useTwoDatabases();
/** Shared by the two SDKs of the file, as by two instances of one deployment: a session works on both. */
const auth = { secret: `test-secret-${randomUUID()}` };
let stale: IsolatedDatabase;
let sdk: Sdk;
let app: ReturnType<typeof createApp>;
let placer: SignedInUser;
let user: SignedInUser;

const count = async (sql: postgres.Sql, query: string, ...params: unknown[]) => {
  const [row] = await sql.unsafe<{ n: number }[]>(`select count(*)::int as n from ${query}`, params as never[]);
  return row!.n;
};

const create = (who: SignedInUser | undefined, body: unknown) =>
  app.request("/api/v1/tenants", json("POST", body, who?.headers ?? {}));

beforeAll(async () => {
  stale = await createIsolatedDatabase(inject("svTestDatabase"));
  const staleSql = postgres(stale.url, { max: 1, onnotice: () => {} });
  await staleSql`delete from drizzle.__drizzle_migrations where id = (select max(id) from drizzle.__drizzle_migrations)`;
  await staleSql.end({ timeout: 5 });
  sdk = createSdk(
    cheapHashingTestSdkOptions(databases.main, {
      auth,
      topology: {
        ...databases.topology,
        databases: { ...databases.topology.databases, stale: { url: stale.url, appUrl: stale.appUrl } },
        regions: { eu: ["tenant_db"], home: ["main"], old: ["stale"] },
      },
    }),
  );
  await sdk.seed();
  app = createApp(sdk, { logRequests: false });
  placer = await signedInUser(sdk);
  user = await signedInUser(sdk);
  await createTestRole(sdk, { permissions: ["tenants:place"], assignTo: placer.user.id });
}, 60_000);

afterAll(async () => {
  await sdk?.close();
  await stale?.drop();
});

describe("POST /api/v1/tenants", () => {
  it("creates a tenant in a region: placed before its rows, which land there, and audited with the placement", async () => {
    const { mainSql, tenantSql } = databases;
    const res = await create(placer, { name: "Acme EU", placement: { region: "eu" } });
    expect(res.status).toBe(201);
    const tenant = (await res.json()) as { id: string; name: string; slug: string; placement: unknown };
    expect(tenant).toMatchObject({ name: "Acme EU", placement: { database: "tenant_db", region: "eu" } });
    expect(tenant.slug).toMatch(/^acme-eu-[0-9a-f]{8}$/);
    expect(
      await count(mainSql, "platform.tenant_placements where tenant_id = $1 and database = 'tenant_db'", tenant.id),
    ).toBe(1);
    expect(
      await count(tenantSql, "permissions.user_roles where tenant_id = $1 and user_id = $2", tenant.id, placer.user.id),
    ).toBe(1);
    expect(await count(mainSql, "permissions.user_roles where tenant_id = $1", tenant.id)).toBe(0);
    const [event] = await tenantSql<{ actor_id: string; metadata: Record<string, unknown> }[]>`
      select actor_id, metadata from audit.audit_logs where action = 'tenant.created' and tenant_id = ${tenant.id}`;
    expect(event).toMatchObject({
      actor_id: placer.user.id,
      metadata: { name: "Acme EU", slug: tenant.slug, placement: { database: "tenant_db", region: "eu" } },
    });

    // Its owner works in it at once, on its database.
    const role = await app.request(
      "/api/v1/permissions/roles",
      json("POST", { name: "editor", permissions: ["docs:write"] }, { ...placer.headers, "x-tenant-id": tenant.id }),
    );
    expect(role.status).toBe(201);
    expect(await count(tenantSql, "permissions.roles where tenant_id = $1", tenant.id)).toBe(1);
  });

  it("creates a tenant on a named database (main: the default placement, no placement row)", async () => {
    const slug = `home-${randomUUID().slice(0, 8)}`;
    const res = await create(placer, { name: "Home", slug, placement: { database: "main" } });
    expect(res.status).toBe(201);
    const tenant = (await res.json()) as { id: string; slug: string; placement: unknown };
    expect(tenant).toMatchObject({ slug, placement: { database: "main", region: "home" } });
    expect(await count(databases.mainSql, "platform.tenant_placements where tenant_id = $1", tenant.id)).toBe(0);
    expect(await count(databases.mainSql, "permissions.user_roles where tenant_id = $1", tenant.id)).toBe(1);
  });

  it("places a tenant created in a region of several databases on the one holding the fewest tenants", async () => {
    const { mainSql } = databases;
    const loads = async () => {
      const [row] = await mainSql<{ main: number; tenant_db: number }[]>`
        select (select count(*)::int from auth.organizations o
                 where not exists (select 1 from platform.tenant_placements p where p.tenant_id = o.id)) as main,
               (select count(*)::int from platform.tenant_placements where database = 'tenant_db') as tenant_db`;
      return row!;
    };
    // Another instance's topology: one region of both databases.
    const mixed = createSdk(
      cheapHashingTestSdkOptions(databases.main, {
        auth,
        topology: { ...databases.topology, regions: { mixed: ["main", "tenant_db"] } },
      }),
    );
    try {
      const mixedApp = createApp(mixed, { logRequests: false });
      for (let i = 0; i < 3; i++) {
        const before = await loads();
        const expected = before.tenant_db < before.main ? "tenant_db" : "main";
        const res = await mixedApp.request(
          "/api/v1/tenants",
          json("POST", { name: `Mixed ${i}`, placement: { region: "mixed" } }, placer.headers),
        );
        expect(res.status).toBe(201);
        expect(((await res.json()) as { placement: unknown }).placement).toEqual({
          database: expected,
          region: "mixed",
        });
      }
    } finally {
      await mixed.close();
    }
  });

  it("creates a tenant on the default database for any signed-in user who asks no placement", async () => {
    const res = await create(user, { name: "Plain" });
    expect(res.status).toBe(201);
    expect(((await res.json()) as { placement: unknown }).placement).toEqual({ database: "main", region: "home" });
  });

  it("creates a tenant while the request names another tenant the caller is in (X-Tenant-Id)", async () => {
    const first = (await (await create(user, { name: "First" })).json()) as { id: string };
    const res = await app.request(
      "/api/v1/tenants",
      json("POST", { name: "Second" }, { ...user.headers, "x-tenant-id": first.id }),
    );
    expect(res.status).toBe(201);
    const second = (await res.json()) as { id: string };
    expect(second.id).not.toBe(first.id);
    expect(await count(databases.mainSql, "auth.members where organization_id = $1", second.id)).toBe(1);
  });

  it("creates a tenant on a database while the request's unit already holds a connection there (X-Tenant-Id of a tenant on it)", async () => {
    const first = (await (await create(placer, { name: "Here", placement: { database: "tenant_db" } })).json()) as {
      id: string;
    };
    const res = await app.request(
      "/api/v1/tenants",
      json(
        "POST",
        { name: "Beside", placement: { database: "tenant_db" } },
        { ...placer.headers, "x-tenant-id": first.id },
      ),
    );
    expect(res.status).toBe(201);
    const second = (await res.json()) as { id: string };
    expect(await count(databases.tenantSql, "permissions.user_roles where tenant_id = $1", second.id)).toBe(1);
  });

  it("refuses a placement without tenants:place (403) and an anonymous caller (401), creating nothing", async () => {
    const name = `Sneaky ${randomUUID()}`;
    const refused = await create(user, { name, placement: { region: "eu" } });
    expect(refused.status).toBe(403);
    expect(refused.headers.get("content-type")).toContain("application/problem+json");
    expect(await refused.json()).toMatchObject({ code: "PERMISSION_DENIED" });
    const anonymous = await create(undefined, { name, placement: { region: "eu" } });
    expect(anonymous.status).toBe(401);
    expect(await count(databases.mainSql, "auth.organizations where name = $1", name)).toBe(0);
  });

  it("answers unknown names 422, a database outside the region 422, bad bodies 400, a taken slug 409", async () => {
    const name = `Nowhere ${randomUUID()}`;
    for (const placement of [{ region: "mars" }, { database: "nowhere" }, { region: "eu", database: "main" }]) {
      const res = await create(placer, { name, placement });
      expect(res.status, JSON.stringify(placement)).toBe(422);
      expect(await res.json()).toMatchObject({ code: "PLACEMENT_UNKNOWN" });
    }
    for (const body of [{ name, placement: {} }, { name, extra: 1 }, { name: "" }, { name, slug: "Not A Slug" }]) {
      const res = await create(placer, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
    }
    expect(await count(databases.mainSql, "auth.organizations where name = $1", name)).toBe(0);

    const slug = `taken-${randomUUID().slice(0, 8)}`;
    expect((await create(placer, { name: "First", slug })).status).toBe(201);
    const again = await create(placer, { name: "Second", slug });
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ code: "TENANT_SLUG_TAKEN" });
  });

  it("refuses a database that is not migrated (409), writing nothing", async () => {
    const name = `Stale ${randomUUID()}`;
    const res = await create(placer, { name, placement: { region: "old" } });
    expect(res.status).toBe(409);
    const problem = (await res.json()) as { code: string; detail: string };
    expect(problem.code).toBe("PLACEMENT_NOT_MIGRATED");
    expect(problem.detail).toMatch(/Database 'stale' is not migrated \(\d+ of \d+ migrations\)/);
    expect(await count(databases.mainSql, "auth.organizations where name = $1", name)).toBe(0);
  });

  it("is documented in /openapi.json", async () => {
    const doc = (await (await app.request("/openapi.json")).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, unknown>; tags: string[] }>>;
    };
    const operation = doc.paths["/api/v1/tenants"]?.post;
    expect(operation?.tags).toEqual(["Tenants"]);
    expect(Object.keys(operation?.responses ?? {})).toEqual(
      expect.arrayContaining(["201", "400", "401", "403", "409", "422", "503"]),
    );
  });
});
