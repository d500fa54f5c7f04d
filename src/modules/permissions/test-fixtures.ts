/**
 * Test-only helpers for this module's tests: users, tenants and audit rows inside the test's unit of
 * work (so they roll back with it).
 */
import { randomUUID } from "node:crypto";
import { and, eq } from "drizzle-orm";
import { fromDatabasesOf } from "../../../test/support.js";
import { createModuleContext } from "../../db/module-context.js";
import type { Router } from "../../db/router.js";
import type { Sdk } from "../../sdk.js";
import { silentLogger } from "../../logger.js";
import { auditLogs } from "../audit/index.js";
import { organizations, users } from "../auth/index.js";
import { permissionsModule, type PermissionsDependencies, type PermissionsModule } from "./index.js";

/** Another instance of the module on `router` (its own in-process cache), made as createSdk makes it. */
export function createPermissions(router: Router, deps: PermissionsDependencies): PermissionsModule {
  return permissionsModule.create(createModuleContext(router, permissionsModule, silentLogger), deps);
}

export async function createUser(sdk: Sdk, name = "Test User"): Promise<string> {
  const id = randomUUID();
  await sdk.router
    .db("auth")
    .insert(users)
    .values({ id, name, email: `${id}@example.test` });
  return id;
}

export async function createTenant(sdk: Sdk): Promise<string> {
  const id = randomUUID();
  await sdk.router
    .db("auth")
    .insert(organizations)
    .values({ id, name: `Org ${id}`, slug: `org-${id}` });
  return id;
}

/** Audit rows of one action on one target, read past tenant scoping inside the current transaction, wherever they rightly are. */
export function auditRows(sdk: Sdk, action: string, targetId: string) {
  return fromDatabasesOf(sdk, "audit", () =>
    sdk.router
      .db("audit")
      .select()
      .from(auditLogs)
      .where(and(eq(auditLogs.action, action), eq(auditLogs.targetId, targetId))),
  );
}
