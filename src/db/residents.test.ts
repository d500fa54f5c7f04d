/**
 * A database other than main knows which tenants it holds (platform.tenant_residents, drizzle/0024),
 * and routers enter a remembered tenant there. A deployment whose tenants were placed before those
 * rows were kept gets them from `sv-sdk migrate` — without them, every unit in such a tenant would be
 * refused as if the tenant had just moved away.
 */
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cheapHashingTestSdkOptions, signedInUser, tenantOf, useTwoDatabases } from "../../test/support.js";
import { createSdk, type Sdk } from "../index.js";
import { migrateTopology } from "./migrate.js";

const databases = useTwoDatabases();
let sdk: Sdk;

beforeAll(async () => {
  sdk = createSdk(
    cheapHashingTestSdkOptions(databases.main, {
      topology: { ...databases.topology, tenants: { defaultDatabase: "tenant_db" } },
    }),
  );
  await sdk.seed();
}, 60_000);

afterAll(async () => {
  await sdk?.close();
});

const residentState = async (tenantId: string) =>
  (
    await databases.tenantSql<
      { state: string }[]
    >`select state from platform.tenant_residents where tenant_id = ${tenantId}`
  )[0]?.state ?? null;

describe("a database's residents", () => {
  it("hold a tenant created there from its creation", async () => {
    const { tenant } = await tenantOf(sdk, await signedInUser(sdk));
    expect(await residentState(tenant.id)).toBe("active");
    const [placed] = await databases.mainSql<{ database: string }[]>`
      select database from platform.tenant_placements where tenant_id = ${tenant.id}`;
    expect(placed?.database).toBe("tenant_db");
  });

  it("are filled by migrate for tenants placed before they were kept, leaving rows already there as they are", async () => {
    const [older, moving] = [
      await tenantOf(sdk, await signedInUser(sdk)),
      await tenantOf(sdk, await signedInUser(sdk)),
    ];
    // As a database migrated before drizzle/0024 has it: no row for a tenant it holds.
    await databases.tenantSql`delete from platform.tenant_residents where tenant_id = ${older.tenant.id}`;
    await databases.tenantSql`update platform.tenant_residents set state = 'moving' where tenant_id = ${moving.tenant.id}`;
    try {
      const reports = await migrateTopology(databases.topology);
      expect(reports.map((r) => r.database)).toEqual(["main", "tenant_db"]);
      expect(await residentState(older.tenant.id)).toBe("active");
      expect(await residentState(moving.tenant.id)).toBe("moving");
    } finally {
      await databases.tenantSql`update platform.tenant_residents set state = 'active' where tenant_id = ${moving.tenant.id}`;
    }
    // And the tenant is served where it lives.
    const roles = await sdk.withTenant(older.tenant.id, () => sdk.permissions.listRoles());
    expect(roles.length).toBeGreaterThan(0);
  });

  it("refuse the runtime any write but recording a tenant just created there", async () => {
    const { tenant } = await tenantOf(sdk, await signedInUser(sdk));
    const runtime = postgres(databases.tenantDb.appUrl, { max: 1, onnotice: () => {} });
    try {
      await expect(
        runtime`update platform.tenant_residents set state = 'moving' where tenant_id = ${tenant.id}`,
      ).rejects.toMatchObject({ code: "42501" });
      // A tenant in use (it has members, it is already resident) cannot be recorded again.
      await expect(runtime`select platform.place_resident(${tenant.id}::uuid)`).rejects.toMatchObject({
        code: "42501",
      });
    } finally {
      await runtime.end({ timeout: 5 });
    }
  });
});
