/**
 * The in-process permission cache in front of `permission_cache`: compiled matchers keyed by user and
 * tenant, dropped on every instance by `NOTIFY sv_permissions` (sent by the database triggers, so it
 * arrives on commit). Payloads: `user:<id>` drops one user's entries, `*` drops everything.
 *
 * Staleness is bounded three ways: a notification drops entries within milliseconds of the commit; a
 * fill that raced with a notification is not stored (the generation moved); and the listener's
 * (re)connection flushes everything, since notifications sent while it was away are lost. `ttlMs`
 * is the last resort should a notification be lost without the connection noticing.
 */
import type { ModuleContext } from "../../db/module.js";
import type { Matcher } from "./matcher.js";

export const NOTIFY_CHANNEL = "sv_permissions";

export interface PermissionCacheOptions {
  /** Turn the in-process cache off (every check then costs one query). Default true. */
  enabled?: boolean;
  /** Longest an entry is trusted without a notification. Default 30 s. */
  ttlMs?: number;
  /** Entries kept; the oldest user is dropped beyond it. Default 50,000. */
  maxEntries?: number;
}

interface Entry {
  matcher: Matcher;
  expiresAt: number;
}

export function createPermissionCache(context: ModuleContext, options: PermissionCacheOptions = {}) {
  const enabled = options.enabled ?? true;
  const ttlMs = options.ttlMs ?? 30_000;
  const maxEntries = options.maxEntries ?? 50_000;
  // userId -> (tenant id, "" for global) -> entry
  const users = new Map<string, Map<string, Entry>>();
  let size = 0;
  let generation = 0;
  let listening = false;
  let starting: Promise<void> | undefined;
  let unlisten: (() => Promise<void>) | undefined;
  let stopped = false;

  function clear() {
    users.clear();
    size = 0;
    generation++;
  }

  function onNotify(payload: string) {
    generation++;
    if (payload.startsWith("user:")) {
      const entries = users.get(payload.slice(5));
      if (entries) {
        size -= entries.size;
        users.delete(payload.slice(5));
      }
    } else {
      clear();
    }
  }

  /**
   * Starts the listeners once — on every database holding the module's rows, since a moved tenant's
   * changes are notified by its own database; entries are only stored while every one is listening.
   */
  function start(): void {
    if (!enabled || starting || stopped) return;
    // Called on every (re)connection: whatever was missed meanwhile is unknown, so forget all.
    starting = context.listen(NOTIFY_CHANNEL, onNotify, clear).then(async (listener) => {
      if (stopped || listener.partial) {
        await listener.unlisten();
        // No listener, no cache: checks keep working, one query each. Retry on a later check.
        listening = false;
        if (!stopped) starting = undefined;
        return;
      }
      unlisten = listener.unlisten;
      listening = true;
    });
  }

  return {
    get generation() {
      return generation;
    },
    get(userId: string, tenant: string | null): Matcher | undefined {
      if (!listening) {
        start();
        return undefined;
      }
      const entry = users.get(userId)?.get(tenant ?? "");
      if (entry === undefined) return undefined;
      if (entry.expiresAt < Date.now()) return undefined;
      return entry.matcher;
    },
    /** Stores a matcher fetched when the generation was `seenGeneration`, unless it moved since. */
    set(userId: string, tenant: string | null, matcher: Matcher, seenGeneration: number): void {
      if (!listening || seenGeneration !== generation) return;
      let entries = users.get(userId);
      if (!entries) {
        if (size >= maxEntries) {
          const oldest = users.keys().next().value;
          if (oldest !== undefined) {
            size -= users.get(oldest)!.size;
            users.delete(oldest);
          }
        }
        entries = new Map();
        users.set(userId, entries);
      }
      if (!entries.has(tenant ?? "")) size++;
      entries.set(tenant ?? "", { matcher, expiresAt: Date.now() + ttlMs });
    },
    clear,
    /** Resolves once the listener is up (tests and benchmarks wait for it). */
    async ready(): Promise<void> {
      start();
      await starting;
    },
    async stop(): Promise<void> {
      stopped = true;
      listening = false;
      clear();
      await starting?.catch(() => undefined);
      await unlisten?.().catch(() => undefined);
    },
  };
}

export type PermissionCache = ReturnType<typeof createPermissionCache>;
