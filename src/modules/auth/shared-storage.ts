/**
 * better-auth's three AsyncLocalStorage instances as slots of the platform's one (see
 * src/db/context-storage.ts for why one instance is cheaper than four on Node 20).
 */
import { ContextSlot } from "../../db/context-storage.js";

/** Where better-auth keeps its AsyncLocalStorage instances (created on first use with `??=`). */
const BETTER_AUTH_GLOBAL = Symbol.for("better-auth:global");
const BETTER_AUTH_STORAGES = [
  "requestStateAsyncStorage",
  "adapterAsyncStorage",
  "endpointContextAsyncStorage",
] as const;

/**
 * Gives better-auth slots of the shared storage instead of three AsyncLocalStorage instances of its
 * own. It only calls `run` and `getStore` on them (checked against better-auth 1.7's source). A
 * later better-auth that keeps them elsewhere just gets its own instances: this is a saving, never a
 * requirement.
 */
export function shareBetterAuthStorage(): void {
  const globals = globalThis as Record<
    symbol,
    { version?: string; epoch?: number; context?: Record<string, unknown> } | undefined
  >;
  // better-auth creates its global lazily and adopts one that exists (stamping its version on it).
  globals[BETTER_AUTH_GLOBAL] ??= { version: "", epoch: 0, context: {} };
  const context = globals[BETTER_AUTH_GLOBAL]!.context;
  if (!context || typeof context !== "object") return;
  for (const name of BETTER_AUTH_STORAGES) context[name] ??= new ContextSlot(`better-auth ${name}`);
}

/** Whether better-auth's storages are slots of the shared one (tests). */
export function betterAuthStorageShared(): boolean {
  const context = (globalThis as Record<symbol, { context?: Record<string, unknown> } | undefined>)[BETTER_AUTH_GLOBAL]
    ?.context;
  return BETTER_AUTH_STORAGES.every((name) => context?.[name] instanceof ContextSlot);
}
