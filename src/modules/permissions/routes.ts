import { createRoutes } from "../../http/routes.js";
import type { PermissionsModule } from "./index.js";

export interface PermissionsRoutesOptions {
  permissions: PermissionsModule;
}

/** `/api/v1/permissions` routes. */
export function createPermissionsRoutes(_options: PermissionsRoutesOptions) {
  return createRoutes();
}

/** `/api/v1/me` routes: the signed-in user's own permissions. */
export function createMePermissionsRoutes(_options: PermissionsRoutesOptions) {
  return createRoutes();
}
