/**
 * The permissions verbs that change the model: roles, their grants and parents, and assignments.
 *
 * Scope: every verb takes `{ tenant }` — a tenant id, or null/omitted for the global scope. Work runs
 * under `router.withTenant(tenant)`, so row-level security is the second wall behind the explicit
 * filters here: inside a tenant only that tenant's roles and the shared global roles are visible, and
 * only the tenant's own rows are writable (0005's restrictive policies).
 *
 * Effective permissions (`permission_cache`) are recomputed by database triggers in the same
 * transaction as each change; every mutation also marks its unit of work so that checks made later in
 * it bypass the in-process cache and see their own writes.
 */
import type { Router } from "../../db/router.js";
import type { AuditModule } from "../audit/index.js";
import { createAssignmentVerbs } from "./assignments.js";
import { createRoleVerbs } from "./roles.js";
import { createPermissionsStore } from "./store.js";

export {
  assertPermissions,
  inChangedUnit,
  MEMBER_ROLES,
  scopeOf,
  type Assignment,
  type AssignmentPage,
  type CreateRoleInput,
  type Role,
  type RolePage,
  type Scope,
} from "./model.js";
export type { PageOptions } from "./page.js";

export function createPermissionsService(router: Router, audit: AuditModule) {
  const store = createPermissionsStore(router, audit);
  return { ...createRoleVerbs(store), ...createAssignmentVerbs(store) };
}

export type PermissionsService = ReturnType<typeof createPermissionsService>;
