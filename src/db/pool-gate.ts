/**
 * The front door of a connection pool. postgres.js has no acquire timeout: when every connection is
 * held by a transaction it queues a query forever, and when in-flight queries exceed `max` its
 * per-query CPU grows in a long-lived process (porsager/postgres#747). The gate admits at most `max`
 * operations at once — a standalone query, a transaction, a reserved connection — so postgres.js
 * never queues, and an operation that cannot get in before its deadline fails with a 503
 * (`DATABASE_BUSY`) instead of waiting.
 *
 * It also refuses the one pattern that can wedge a pool for good: asking it for a connection while
 * the current unit of work already holds one of it. Under load every holder waits for a second
 * connection that only another holder could give back (20 concurrent sign-ups did this to a pool of
 * 10 while a rate limiter wrote beside the request's transaction). `holdsConnection`
 * answers, from the ambient context, whether the caller holds one; the gate then fails at once,
 * naming the pool, rather than deadlocking under load.
 */
import type postgres from "postgres";
import { CommonErrors } from "../errors.js";
import type { Deadline } from "./deadline.js";
import type { DatabaseHealth } from "./health.js";

export interface PoolGateOptions {
  /** The database's name in the topology (for errors and logs). */
  name: string;
  /** Operations admitted at once: the pool's `max`. */
  max: number;
  /** Longest wait for a free connection. */
  acquireTimeoutMs: number;
  /** Longest a standalone query waits for its answer, client side (a frozen server never answers). */
  queryTimeoutMs: number;
  /** Whether the caller's unit of work holds a connection of this pool right now. */
  holdsConnection: () => boolean;
  /** The caller's deadline, if it has one (a request's): waits end by it too. */
  deadline: () => Deadline | undefined;
  /** What to do on a re-entrant acquire: fail (default) or log and go on (then only the acquire timeout protects). */
  onReentry?: "throw" | ((message: string) => void);
  /**
   * The database's health (src/db/health.ts): work on a database known down is refused before it
   * waits, and work waiting on one that goes down fails then and there.
   */
  health?: DatabaseHealth;
}

/** Thrown (as a programming error, not a 503) when a unit of work asks its own pool for a second connection. */
export class PoolReentryError extends Error {
  override readonly name = "PoolReentryError";
}

type Release = () => void;

interface Waiter {
  grant: (release: Release) => void;
  fail: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

export interface PoolGate {
  readonly name: string;
  /** Operations admitted right now. */
  readonly active: number;
  /** Operations waiting for a turn. */
  readonly waiting: number;
  /** Waits for a turn (at most the acquire timeout or the caller's deadline); call the result to give it back. */
  acquire(): Promise<Release>;
  /** A turn now, or undefined when none is free (then `acquire`); refuses as `acquire` does. */
  tryAcquire(): Release | undefined;
}

export function createPoolGate(options: PoolGateOptions): PoolGate {
  let active = 0;
  const queue: Waiter[] = [];

  const release = () => {
    const next = queue.shift();
    if (next) {
      clearTimeout(next.timer);
      next.grant(once());
    } else {
      active--;
    }
  };
  // Each turn is given back exactly once, whatever the caller does.
  const once = (): Release => {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      release();
    };
  };

  function checkReentry(): void {
    if (!options.holdsConnection()) return;
    const message =
      `sv-sdk: a query asked the '${options.name}' pool for a connection while its unit of work holds one of it. ` +
      "Under load this deadlocks the pool; run it on the unit's transaction (the router's handles) or on a pool of its own.";
    if (options.onReentry === undefined || options.onReentry === "throw") throw new PoolReentryError(message);
    options.onReentry(message);
  }

  function tryAcquire(): Release | undefined {
    checkReentry();
    options.health?.check();
    if (active >= options.max) return undefined;
    active++;
    return once();
  }

  return {
    name: options.name,
    get active() {
      return active;
    },
    get waiting() {
      return queue.length;
    },
    tryAcquire,
    acquire(): Promise<Release> {
      const now = tryAcquire();
      if (now) return Promise.resolve(now);
      const deadline = options.deadline();
      const wait = Math.min(options.acquireTimeoutMs, deadline ? Math.max(0, deadline.remaining()) : Infinity);
      const turn = new Promise<Release>((grant, fail) => {
        const waiter: Waiter = {
          grant,
          fail,
          timer: setTimeout(() => {
            const at = queue.indexOf(waiter);
            if (at >= 0) queue.splice(at, 1);
            fail(
              deadline && deadline.remaining() <= 0
                ? deadline.error()
                : CommonErrors.DATABASE_BUSY(
                    { database: options.name, reason: "pool_exhausted" },
                    `No connection to the '${options.name}' database was free within ${options.acquireTimeoutMs} ms; retry shortly`,
                  ),
            );
          }, wait),
        };
        queue.push(waiter);
      });
      if (!options.health) return turn;
      // Failed early because the database went down: a turn granted later is given straight back.
      return options.health.guard(turn).catch((error: unknown) => {
        turn.then(
          (release) => release(),
          () => undefined,
        );
        throw error;
      });
    },
  };
}

/** A query that has not been sent yet: postgres.js sends a query when it is first awaited. */
type PendingQuery = postgres.PendingQuery<postgres.Row[]>;

const CHAINABLE = new Set(["values", "raw", "simple", "describe"]);
const UNGATED_STREAMS = new Set(["cursor", "forEach", "readable", "writable"]);

/**
 * Wraps a query so that it waits for a turn before it is sent, and gives the turn back when it
 * settles. Its answer is awaited at most `queryTimeoutMs` (or the caller's deadline): a frozen server
 * never answers, and the query is then cancelled and the caller gets a 503; the turn stays taken
 * until the connection really settles, so the pool never runs more than `max` at once.
 */
function gatedQuery(query: PendingQuery, gate: PoolGate, options: PoolGateOptions): PendingQuery {
  let running: Promise<unknown> | undefined;
  const run = (): Promise<unknown> =>
    (running ??= gate.acquire().then((release) => {
      const sent = Promise.resolve(query).finally(release);
      const answer = options.health ? options.health.guard(sent, true) : sent;
      const deadline = options.deadline();
      const wait = Math.min(options.queryTimeoutMs, deadline ? deadline.remaining() : Infinity);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => {
            answer.catch(() => undefined);
            Promise.resolve(query.cancel()).catch(() => undefined);
            reject(
              deadline && deadline.remaining() <= 0
                ? deadline.error()
                : CommonErrors.DATABASE_UNAVAILABLE(
                    { database: options.name, reason: "no_answer" },
                    `The '${options.name}' database did not answer within ${options.queryTimeoutMs} ms; retry shortly`,
                  ),
            );
          },
          Math.max(0, wait),
        );
        answer.then(
          (value) => (clearTimeout(timer), resolve(value)),
          (error: unknown) => (clearTimeout(timer), reject(error)),
        );
      });
    }));
  const proxy: PendingQuery = new Proxy(query, {
    get(target, property) {
      if (property === "then")
        return (ok?: (v: unknown) => unknown, ko?: (e: unknown) => unknown) => run().then(ok, ko);
      if (property === "catch") return (ko?: (e: unknown) => unknown) => run().catch(ko);
      if (property === "finally") return (fn?: () => void) => run().finally(fn);
      if (property === "execute") return () => (run().catch(() => undefined), proxy);
      if (typeof property === "string" && CHAINABLE.has(property)) {
        return (...args: unknown[]) => {
          (target[property as "values"] as (...a: unknown[]) => unknown).apply(target, args);
          return proxy;
        };
      }
      if (typeof property === "string" && UNGATED_STREAMS.has(property)) {
        throw new Error(
          `sv-sdk: .${property}() on a pooled query is not gated; reserve a connection (sql.reserve()) and stream on it`,
        );
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return proxy;
}

/**
 * A postgres.js client whose every operation passes the gate: tagged-template and `unsafe` queries,
 * `begin` (the turn is held for the whole transaction) and `reserve` (held until `release()`).
 * Everything else (`listen`, which has a connection of its own, `end`, helpers) is the client's own.
 */
export function gatedClient(sql: postgres.Sql, gate: PoolGate, options: PoolGateOptions): postgres.Sql {
  const begin = (...args: unknown[]): Promise<unknown> => {
    const run = (release: Release) => {
      // The turn is held until the transaction really ends, even when the caller was failed earlier
      // (its database went down): the pool never runs more than `max` at once.
      const running = (sql.begin as (...a: unknown[]) => Promise<unknown>)(...args);
      running.then(release, release);
      return options.health ? options.health.guard(running, true) : running;
    };
    try {
      // A free turn is taken without waiting a turn of the event loop (most transactions find one).
      const now = gate.tryAcquire();
      return now ? run(now) : gate.acquire().then(run);
    } catch (error) {
      return Promise.reject(error);
    }
  };
  const reserve = async () => {
    const release = await gate.acquire();
    const reserving = sql.reserve();
    try {
      const reserved = await (options.health ? options.health.guard(reserving, true) : reserving);
      const own = reserved.release.bind(reserved);
      reserved.release = () => {
        own();
        release();
      };
      return reserved;
    } catch (error) {
      // Failed early (the database went down): a connection reserved later goes straight back, then the turn.
      reserving.then(
        (late) => (late.release(), release()),
        () => release(),
      );
      throw error;
    }
  };
  const unsafe = (...args: unknown[]) =>
    gatedQuery((sql.unsafe as (...a: unknown[]) => PendingQuery)(...args), gate, options);
  return new Proxy(sql, {
    apply(target, _this, args: unknown[]) {
      const [strings] = args;
      const result = Reflect.apply(target, target, args) as unknown;
      // A tagged template is a query; any other call builds a fragment (identifiers, lists).
      return Array.isArray(strings) && "raw" in strings ? gatedQuery(result as PendingQuery, gate, options) : result;
    },
    get(target, property) {
      if (property === "begin") return begin;
      if (property === "reserve") return reserve;
      if (property === "unsafe") return unsafe;
      return Reflect.get(target, property, target);
    },
  });
}
