/**
 * One AsyncLocalStorage for the process, shared by every context that needs one.
 *
 * On Node 20 each enabled AsyncLocalStorage instance adds work to every promise the process creates
 * (the store is copied onto each new promise, once per instance). The unit of work needs one, and
 * better-auth creates three more on first use; measured in a promise-heavy loop, four enabled
 * instances cost 0.44 µs per async call against 0.24 µs for one. A `ContextSlot` has the part of the
 * AsyncLocalStorage API these users call — `run` and `getStore` — and keeps its store under a key of
 * one shared frame, so the process pays for a single instance.
 */
import { AsyncLocalStorage } from "node:async_hooks";

type Frame = Readonly<Record<symbol, unknown>>;

const shared = new AsyncLocalStorage<Frame>();

export class ContextSlot<T> {
  readonly #key: symbol;

  constructor(name: string) {
    this.#key = Symbol(name);
  }

  /** Runs `fn` with this slot's store set to `store`; other slots keep theirs. */
  run<R, A extends unknown[]>(store: T, fn: (...args: A) => R, ...args: A): R {
    return shared.run({ ...shared.getStore(), [this.#key]: store }, fn, ...args);
  }

  getStore(): T | undefined {
    return shared.getStore()?.[this.#key] as T | undefined;
  }
}

/** Where better-auth keeps its AsyncLocalStorage instances (created on first use with `??=`). */
const BETTER_AUTH_GLOBAL = Symbol.for("better-auth:global");
const BETTER_AUTH_STORAGES = ["requestStateAsyncStorage", "adapterAsyncStorage", "endpointContextAsyncStorage"] as const;

/**
 * Gives better-auth slots of the shared storage instead of three AsyncLocalStorage instances of its
 * own. It only calls `run` and `getStore` on them (checked against better-auth 1.7's source). A
 * later better-auth that keeps them elsewhere just gets its own instances: this is a saving, never a
 * requirement.
 */
export function shareBetterAuthStorage(): void {
  const globals = globalThis as Record<symbol, { version?: string; epoch?: number; context?: Record<string, unknown> } | undefined>;
  // better-auth creates its global lazily and adopts one that exists (stamping its version on it).
  globals[BETTER_AUTH_GLOBAL] ??= { version: "", epoch: 0, context: {} };
  const context = globals[BETTER_AUTH_GLOBAL]!.context;
  if (!context || typeof context !== "object") return;
  for (const name of BETTER_AUTH_STORAGES) context[name] ??= new ContextSlot(`better-auth ${name}`);
}

/** Whether better-auth's storages are slots of the shared one (tests). */
export function betterAuthStorageShared(): boolean {
  const context = (globalThis as Record<symbol, { context?: Record<string, unknown> } | undefined>)[BETTER_AUTH_GLOBAL]?.context;
  return BETTER_AUTH_STORAGES.every((name) => context?.[name] instanceof ContextSlot);
}
