/**
 * Concurrent permission writes on a database that really commits (issue 13, point 10). Each unit of
 * work checks a permission first and then changes roles or assignments — what every mutating route
 * does — and none may deadlock; afterwards `permission_cache` equals a fresh recomputation. On databases
 * of their own, in the run's topology.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  cheapHashingTestSdkOptions,
  createIsolatedTopology,
  json,
  type IsolatedTopology,
} from "../../../test/support.js";
import { createApp } from "../../app.js";
import { AppError } from "../../errors.js";
import { createSdk, type Sdk } from "../../index.js";
import { addTestMember, createTestTenant, createTestUser, type TestUser } from "../../testing/factories.js";
import { createPermissions, createTenant, createUser } from "./test-fixtures.js";

let database: IsolatedTopology;
let sdk: Sdk;

beforeAll(async () => {
  database = await createIsolatedTopology();
  sdk = createSdk(cheapHashingTestSdkOptions(database.main, database.placement));
  await sdk.permissions.ready();
});

afterAll(async () => {
  await sdk?.close();
  await database?.drop();
});

/** What did not succeed, described; a 4xx AppError is a refusal, anything else a failure. */
function failures(results: PromiseSettledResult<unknown>[]): string[] {
  return results.flatMap((result) => {
    if (result.status === "fulfilled") return [];
    const error = result.reason as { code?: string; cause?: { code?: string }; message?: string };
    if (error instanceof AppError && error.status < 500) return [];
    return [`${error.cause?.code ?? error.code ?? "?"}: ${error.message}`];
  });
}

/** Cache rows that differ from what effective_permissions() computes now, on every database (read past RLS). */
async function staleCacheRows() {
  const stale = [];
  for (const name of Object.keys(database.topology.databases)) {
    stale.push(...(await staleCacheRowsOn(database.ownerSqlOf(name))));
  }
  return stale;
}

function staleCacheRowsOn(owner: ReturnType<IsolatedTopology["ownerSqlOf"]>) {
  return owner`
    select user_id, tenant_id, permissions, permissions.effective_permissions(user_id, tenant_id) as fresh
      from permissions.permission_cache
     where permissions is distinct from permissions.effective_permissions(user_id, tenant_id)`;
}

/** Every user's permissions through the one-query path (no in-process cache) against a recomputation. */
async function expectChecksMatchRecomputation(users: string[], tenant: string) {
  const permissions = createPermissions(sdk.router, { audit: sdk.audit, cache: { enabled: false } });
  // What a user holds in a tenant placed on a database of its own: its global part on main, the rest there.
  const places = [...new Set([database.owner, await database.ownerSqlForTenant(sdk, tenant, "permissions")])];
  for (const user of users) {
    const fresh = new Set<string>();
    for (const owner of places) {
      const [row] = await owner<{ permissions: string[] }[]>`
        select permissions.effective_permissions(${user}::uuid, ${tenant}::uuid) as permissions`;
      for (const permission of row!.permissions) fresh.add(permission);
    }
    expect([...(await permissions.permissionsOf(user, { tenant }))].sort()).toEqual([...fresh].sort());
  }
}

/** Runs `fn` as a unit of work acting as `actor` in `tenant`, like a mutating request. */
function unitAs<T>(actor: string, tenant: string, fn: () => Promise<T>): Promise<T> {
  return sdk.withContext({ actor: { type: "user", id: actor }, tenantId: tenant }, () => sdk.transaction(fn));
}

async function requirePermission(user: string, permission: string, tenant: string) {
  if (!(await sdk.permissions.can(user, permission, { tenant }))) throw new Error(`${user} lacks ${permission}`);
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe("concurrent permission writes", () => {
  it("runs 20 role creations and 20 assignments, each after a check, in a new tenant without a deadlock", async () => {
    const tenant = await sdk.transaction(() => createTenant(sdk));
    const admins = await sdk.transaction(() => Promise.all(range(20).map(() => createUser(sdk, "Admin"))));
    const targets = await sdk.transaction(() => Promise.all(range(20).map(() => createUser(sdk, "Target"))));
    for (const admin of admins) await sdk.permissions.assignRole(admin, "admin", { tenant });

    const units = range(20).flatMap((i) => [
      unitAs(admins[i]!, tenant, async () => {
        await requirePermission(admins[i]!, "roles:write", tenant);
        return sdk.permissions.createRole({ name: `team-${i}`, permissions: ["reports:read"] }, { tenant });
      }),
      unitAs(admins[(i + 7) % 20]!, tenant, async () => {
        await requirePermission(admins[(i + 7) % 20]!, "roles:assign", tenant);
        return sdk.permissions.assignRole(targets[i]!, "auditor", { tenant });
      }),
    ]);
    const results = await Promise.allSettled(units);

    expect(failures(results)).toEqual([]);
    expect(results.every((r) => r.status === "fulfilled")).toBe(true);
    expect(await sdk.permissions.listRoles({ tenant })).toHaveLength(20 + 4); // and the 4 built-in ones
    expect(await staleCacheRows()).toEqual([]);
    await expectChecksMatchRecomputation([...admins, ...targets], tenant);
  });

  it("keeps the cache right when units assign and change one shared role in either order while checks fill it", async () => {
    const tenant = await sdk.transaction(() => createTenant(sdk));
    const [admin, ...targets] = await sdk.transaction(() => Promise.all(range(21).map(() => createUser(sdk))));
    await sdk.permissions.assignRole(admin!, "admin", { tenant });
    await sdk.permissions.createRole({ name: "staff", permissions: ["docs:read"] }, { tenant });
    for (const target of targets.slice(0, 10)) await sdk.permissions.assignRole(target, "staff", { tenant });
    // Some rows are cached before the storm, some are filled during it.
    for (const target of targets.slice(0, 5)) await sdk.permissions.can(target, "docs:read", { tenant });

    const uncached = createPermissions(sdk.router, { audit: sdk.audit, cache: { enabled: false } });
    const work = range(20).flatMap((i) => [
      unitAs(admin!, tenant, async () => {
        await requirePermission(admin!, "roles:write", tenant);
        if (i % 2 === 0) {
          await sdk.permissions.assignRole(targets[i]!, "staff", { tenant });
          await sdk.permissions.grantPermissions("staff", [`docs:p${i}`], { tenant });
        } else {
          await sdk.permissions.grantPermissions("staff", [`docs:p${i}`], { tenant });
          await sdk.permissions.assignRole(targets[i]!, "staff", { tenant });
        }
      }),
      // A check outside any unit of work: the fill that stores rows.
      uncached.can(targets[(i * 3) % 20]!, `docs:p${i}`, { tenant }),
    ]);
    const results = await Promise.allSettled(work);

    expect(failures(results)).toEqual([]);
    expect(await staleCacheRows()).toEqual([]);
    await expectChecksMatchRecomputation(targets, tenant);
    const held = await uncached.permissionsOf(targets[0]!, { tenant });
    expect([...held].sort()).toEqual(["docs:read", ...range(20).map((i) => `docs:p${i}`)].sort());
  });

  it("answers 20 concurrent role creations and 20 assignments by tenant admins over HTTP with 201", async () => {
    const app = createApp(sdk, { logRequests: false });
    const founder = await createTestUser(sdk);
    const { tenant } = await createTestTenant(sdk, founder);
    const join = async (role: "admin" | "member") => {
      const user = await createTestUser(sdk);
      await addTestMember(sdk, tenant.id, user.user.id, role);
      return user;
    };
    const admins: TestUser[] = [];
    for (let i = 0; i < 10; i++) admins.push(await join("admin"));
    const members: string[] = [];
    for (let i = 0; i < 20; i++) members.push((await join("member")).user.id);
    const headersOf = (i: number) => ({ ...admins[i % 10]!.headers, "x-tenant-id": tenant.id });

    const responses = await Promise.all(
      range(20).flatMap((i) => [
        app.request(
          "/api/v1/permissions/roles",
          json("POST", { name: `http-${i}`, permissions: ["audit:read"] }, headersOf(i)),
        ),
        app.request(
          "/api/v1/permissions/assignments",
          json("POST", { userId: members[i], role: "auditor" }, headersOf(i + 5)),
        ),
      ]),
    );
    const unexpected = await Promise.all(
      responses.filter((r) => r.status !== 201).map(async (r) => `${r.status} ${await r.text()}`),
    );

    expect(unexpected).toEqual([]);
    expect(await staleCacheRows()).toEqual([]);
    await expectChecksMatchRecomputation([...admins.map((a) => a.user.id), ...members], tenant.id);
  });
});
