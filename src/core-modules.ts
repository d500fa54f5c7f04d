/**
 * The modules every SDK carries, in the order they are created (each may call the ones before it).
 * A module of your own is added with `createSdk({ modules: [yours] })`.
 */
import { catalogOf, type ModuleCatalog, type ModuleDescriptor, type ModuleLifecycle } from "./db/module.js";
import { createRouter, type Router, type RouterOptions } from "./db/router.js";
import type { Topology } from "./db/topology.js";
import { auditModule } from "./modules/audit/index.js";
import { authModule } from "./modules/auth/index.js";
import { emailModule } from "./modules/email/index.js";
import { permissionsModule } from "./modules/permissions/index.js";

export const CORE_MODULES = [auditModule, permissionsModule, emailModule, authModule] as const;

type AnyModule = ModuleDescriptor<ModuleLifecycle, never>;

/** The catalog of the core modules and `extra` ones. */
export function coreCatalog(extra: readonly AnyModule[] = []): ModuleCatalog {
  return catalogOf([...(CORE_MODULES as unknown as AnyModule[]), ...extra]);
}

/** A router over the core modules (entry points and tools that need no SDK). */
export function createCoreRouter(topology: Topology, options: RouterOptions = {}): Router {
  return createRouter(topology, coreCatalog(), options);
}
