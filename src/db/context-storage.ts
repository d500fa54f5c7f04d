/**
 * One AsyncLocalStorage for the process, shared by every context that needs one.
 *
 * On Node 20 each enabled AsyncLocalStorage instance adds work to every promise the process creates
 * (the store is copied onto each new promise, once per instance). The unit of work needs one, and
 * a library may create more (three, in one case here); measured in a promise-heavy loop, four enabled
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

/**
 * Runs `fn` outside every slot's store: background work started from inside a unit of work (a
 * reload of what the router remembers) must not see, or wait on, that unit's transactions.
 */
export function outsideEveryContext<R>(fn: () => R): R {
  return shared.run({}, fn);
}
