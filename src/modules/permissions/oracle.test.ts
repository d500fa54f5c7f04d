/**
 * `can()` against an independent brute-force evaluator on a few hundred random policies: random
 * global and tenant roles, grants with wildcards, inheritance DAGs and assignments — then random
 * changes, so the triggers' recomputation of existing `permission_cache` rows is checked as well.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { useTestSdk } from "../../../test/support.js";
import { withRollback } from "../../testing/rollback.js";
import { and, eq, sql } from "drizzle-orm";
import { roleInheritance, rolePermissions, roles, userRoles } from "./schema.js";
import { createPermissions, createTenant, createUser } from "./test-fixtures.js";

const { sdk } = useTestSdk();
// No in-process cache: this policy's changes are written straight into the tables (not through the
// verbs), so every check must come from the database.
const permissions = createPermissions(sdk.router, { audit: sdk.audit, cache: { enabled: false } });

const GRANTS = [
  "*",
  "audit:*",
  "email:*",
  "email.templates:*",
  "roles:*",
  "audit:read",
  "audit:export",
  "email:send",
  "email.templates:read",
  "roles:read",
  "roles:read:self",
  "roles:write",
];
const QUERIES = [
  "audit:read",
  "audit:export",
  "audit:*",
  "email:send",
  "email:read",
  "email.templates:read",
  "email.templates:write",
  "roles:read",
  "roles:read:self",
  "roles:write",
  "roles:assign",
  "billing:read",
];

interface Policy {
  roles: { id: string; tenant: string | null; grants: Set<string>; parents: Set<string> }[];
  assignments: { user: string; role: string; tenant: string | null }[];
}

/** mulberry32: a small seeded generator, so a failure names a reproducible seed. */
function generator(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]!,
  };
}

/** The oracle: held roles by scope, closure by depth-first search, matching by plain string rules. */
function oracle(policy: Policy, user: string, tenant: string | null, permission: string): boolean {
  const byId = new Map(policy.roles.map((r) => [r.id, r]));
  const seen = new Set<string>();
  const stack = policy.assignments
    .filter((a) => a.user === user && (a.tenant === null || a.tenant === tenant))
    .map((a) => a.role);
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...byId.get(id)!.parents);
  }
  for (const id of seen) {
    for (const grant of byId.get(id)!.grants) {
      if (grant === "*" || grant === permission) return true;
      if (grant.endsWith(":*") && permission.startsWith(grant.slice(0, -1))) return true;
    }
  }
  return false;
}

function randomPolicy(rng: ReturnType<typeof generator>, users: string[], tenants: string[]): Policy {
  const policy: Policy = { roles: [], assignments: [] };
  const count = 2 + rng.int(6);
  for (let i = 0; i < count; i++) {
    const tenant = rng.next() < 0.5 ? null : rng.pick(tenants);
    const grants = new Set(Array.from({ length: rng.int(4) }, () => rng.pick(GRANTS)));
    // Parents only among earlier roles (a DAG), of the global scope or the same tenant.
    const candidates = policy.roles.filter((r) => r.tenant === null || r.tenant === tenant);
    const parents = new Set(candidates.filter(() => rng.next() < 0.35).map((r) => r.id));
    policy.roles.push({ id: randomUUID(), tenant, grants, parents });
  }
  for (const user of users) {
    for (let i = rng.int(4); i > 0; i--) {
      const role = rng.pick(policy.roles);
      const tenant = role.tenant ?? (rng.next() < 0.4 ? null : rng.pick(tenants));
      if (!policy.assignments.some((a) => a.user === user && a.role === role.id && a.tenant === tenant)) {
        policy.assignments.push({ user, role: role.id, tenant });
      }
    }
  }
  return policy;
}

async function write(policy: Policy) {
  const db = sdk.router.db("permissions");
  await sdk.withTenant("*", async () => {
    await db.insert(roles).values(policy.roles.map((r) => ({ id: r.id, tenantId: r.tenant, name: `r-${r.id}` })));
    const grants = policy.roles.flatMap((r) => [...r.grants].map((permission) => ({ roleId: r.id, permission })));
    if (grants.length > 0) await db.insert(rolePermissions).values(grants);
    const parents = policy.roles.flatMap((r) =>
      [...r.parents].map((inheritsRoleId) => ({ roleId: r.id, inheritsRoleId })),
    );
    if (parents.length > 0) await db.insert(roleInheritance).values(parents);
    if (policy.assignments.length > 0) {
      await db
        .insert(userRoles)
        .values(policy.assignments.map((a) => ({ userId: a.user, roleId: a.role, tenantId: a.tenant })));
    }
  });
}

/** One random change, applied to the database and to the policy alike. */
async function mutate(rng: ReturnType<typeof generator>, policy: Policy) {
  const db = sdk.router.db("permissions");
  await sdk.withTenant("*", async () => {
    const role = rng.pick(policy.roles);
    const choice = rng.int(4);
    if (choice === 0 && role.grants.size > 0) {
      const grant = rng.pick([...role.grants]);
      role.grants.delete(grant);
      await db
        .delete(rolePermissions)
        .where(and(eq(rolePermissions.roleId, role.id), eq(rolePermissions.permission, grant)));
    } else if (choice === 1 && role.parents.size > 0) {
      const parent = rng.pick([...role.parents]);
      role.parents.delete(parent);
      await db
        .delete(roleInheritance)
        .where(and(eq(roleInheritance.roleId, role.id), eq(roleInheritance.inheritsRoleId, parent)));
    } else if (choice === 2 && policy.assignments.length > 0) {
      const assignment = policy.assignments.splice(rng.int(policy.assignments.length), 1)[0]!;
      await db
        .delete(userRoles)
        .where(and(eq(userRoles.userId, assignment.user), eq(userRoles.roleId, assignment.role)));
      policy.assignments = policy.assignments.filter(
        (a) => !(a.user === assignment.user && a.role === assignment.role),
      );
    } else {
      const grant = rng.pick(GRANTS);
      if (!role.grants.has(grant)) {
        role.grants.add(grant);
        await db.insert(rolePermissions).values({ roleId: role.id, permission: grant });
      }
    }
  });
}

/**
 * Stores every user's `permission_cache` rows, as checks of their own would (a check inside a unit of
 * work stores nothing, drizzle/0011); this unit holds the model lock from `write`, so each fill does.
 */
async function materialize(users: string[], tenants: string[]) {
  const db = sdk.router.db("permissions");
  await sdk.withTenant("*", async () => {
    for (const user of users) {
      for (const tenant of [null, ...tenants]) {
        await db.execute(sql`select permissions.cached_permissions(${user}::uuid, ${tenant}::uuid, true)`);
      }
    }
  });
}

async function compare(policy: Policy, users: string[], tenants: string[], context: string) {
  const mismatches: string[] = [];
  for (const user of users) {
    for (const tenant of [null, ...tenants]) {
      const answers = await permissions.checkMany(user, QUERIES, { tenant });
      for (const query of QUERIES) {
        if (answers[query] !== oracle(policy, user, tenant, query)) {
          mismatches.push(
            `${context}: user ${users.indexOf(user)} in ${tenant ? `tenant ${tenants.indexOf(tenant)}` : "global"}: ${query} -> ${answers[query]}`,
          );
        }
      }
      const query = QUERIES[(users.indexOf(user) + tenants.length) % QUERIES.length]!;
      if ((await permissions.can(user, query, { tenant })) !== oracle(policy, user, tenant, query)) {
        mismatches.push(`${context}: can(${query}) disagrees`);
      }
    }
  }
  return mismatches;
}

describe("can() against a brute-force oracle", () => {
  it("agrees on 300 random policies, before and after random changes", { timeout: 240_000 }, async () => {
    const seed = Number(process.env.PERMISSIONS_ORACLE_SEED ?? Date.now() % 1_000_000);
    const rng = generator(seed);
    let checked = 0;
    for (let round = 0; round < 300; round++) {
      const mismatches = await withRollback(sdk, async () => {
        const users = [await createUser(sdk), await createUser(sdk), await createUser(sdk)];
        const tenants = [await createTenant(sdk), await createTenant(sdk)];
        const policy = randomPolicy(rng, users, tenants);
        await write(policy);
        await materialize(users, tenants);
        const found = await compare(policy, users, tenants, `seed ${seed} round ${round}`);
        for (let step = 0; step < 3; step++) await mutate(rng, policy);
        found.push(...(await compare(policy, users, tenants, `seed ${seed} round ${round} after changes`)));
        return found;
      });
      expect(mismatches).toEqual([]);
      checked++;
    }
    expect(checked).toBe(300);
  });
});
