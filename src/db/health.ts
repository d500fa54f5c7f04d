/**
 * What the router knows of each database's health: `up`, or `down` since some moment. A database
 * that is down (stopped, unreachable) or frozen (it accepts connections and answers nothing) must
 * cost only what lives there, and quickly: work on it fails at once with a 503 instead of waiting
 * out the acquire, query or request deadline, and the rest of the instance is not slowed.
 *
 * Nothing is probed while all is well. Work that waits on a database longer than `suspectAfterMs`,
 * or fails to reach it, makes it suspect: one probe (`select 1` on a connection of its own, never
 * the pool's) must answer within `probeTimeoutMs`, or the database is marked down — the work still
 * waiting on it is failed then and there, and new work is refused before it asks the pool. While it
 * is down, one probe a `retryEveryMs` watches for its return; the first that answers marks it up,
 * with no restart. At most one probe per database is in flight; a probe that timed out has its
 * client ended (its half-open connection to a frozen server goes with it), so probes never pile up.
 */
import { CommonErrors } from "../errors.js";

export type DatabaseState = "up" | "down";

/** The probe's connection: a client of its own (one connection), ended when a probe times out. */
export interface ProbeClient {
  ping(): Promise<unknown>;
  end(): Promise<unknown>;
}

export interface DatabaseHealthOptions {
  /** The database's name in the topology. */
  name: string;
  /** A fresh probe client (called again after one is ended). */
  probeClient: () => ProbeClient;
  /** Longest a probe may take before the database is called down. */
  probeTimeoutMs?: number;
  /** Probe interval while down. */
  retryEveryMs?: number;
  /** Work waiting this long on the database makes it suspect (a probe is sent). */
  suspectAfterMs?: number;
  /** A probe that answered this recently vouches for the database: no new probe. */
  freshForMs?: number;
  /** Called on every change of state (for logs). */
  onChange?: (state: DatabaseState, reason?: string) => void;
}

export interface DatabaseHealthStatus {
  state: DatabaseState;
  /** Epoch ms of the last change of state (of the start, before any). */
  since: number;
  /** Why it was marked down (the probe's failure, in a word or two). */
  reason?: string;
}

export interface DatabaseHealth {
  readonly name: string;
  status(): DatabaseHealthStatus;
  /** Throws the 503 of a database known down (work is refused before it asks the pool). */
  check(): void;
  /** Something suggests the database is not answering: probe it now (unless a probe is under way or fresh). */
  suspect(): void;
  /**
   * `work`, or a 503 as soon as the database is marked down while it waits. A wait longer than
   * `suspectAfterMs` makes the database suspect; a failure to reach it does too. `work` goes on and
   * its outcome is observed (never an unhandled rejection). `answers`: the work is the database's
   * own answer (a query, a transaction), so its success shows the database alive — slow, perhaps,
   * under a heavy copy, but not frozen: a probe running meanwhile does not call it down.
   */
  guard<T>(work: Promise<T>, answers?: boolean): Promise<T>;
  /** Stops probing (the router closes). */
  stop(): Promise<void>;
}

const DEFAULTS = { probeTimeoutMs: 1_000, retryEveryMs: 1_000, suspectAfterMs: 400, freshForMs: 500 };

/** The 503 for work on a database known down. */
export function databaseDownError(name: string): Error {
  return CommonErrors.DATABASE_UNAVAILABLE(
    { database: name, reason: "down" },
    `The '${name}' database is down or not answering; retry shortly`,
  );
}

/** Whether a failure says the database could not be reached (rather than refusing the work itself). */
function unreachable(error: unknown): boolean {
  for (let cause = error, depth = 0; cause && depth < 6; cause = (cause as { cause?: unknown }).cause, depth++) {
    const code = String((cause as { code?: unknown }).code ?? "");
    if (code === "DATABASE_UNAVAILABLE" || code.startsWith("08") || code.startsWith("57P0")) return true;
    if (/^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EPIPE|CONNECT_TIMEOUT|CONNECTION_)/.test(code))
      return true;
  }
  return false;
}

export function createDatabaseHealth(options: DatabaseHealthOptions): DatabaseHealth {
  const settings = { ...DEFAULTS, ...options };
  let status: DatabaseHealthStatus = { state: "up", since: Date.now() };
  let client: ProbeClient | undefined;
  let probing: Promise<void> | undefined;
  let lastAnswer = 0;
  // The last answer to work on the database (not the probe's): evidence against a freeze.
  let lastWorkAnswer = 0;
  let retry: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  // Work waiting on the database, with when it began (oldest first). One timer, not one per piece of
  // work, watches the oldest: waiting longer than `suspectAfterMs` makes the database suspect.
  const waiting = new Map<(error: Error) => void, number>();
  let watch: ReturnType<typeof setInterval> | undefined;
  const watchWaiting = () => {
    if (watch) return;
    watch = setInterval(
      () => {
        const oldest = waiting.values().next();
        if (oldest.done) {
          clearInterval(watch);
          watch = undefined;
        } else if (Date.now() - oldest.value >= settings.suspectAfterMs) {
          health.suspect();
        }
      },
      Math.max(10, settings.suspectAfterMs / 8),
    );
    watch.unref?.();
  };

  const set = (state: DatabaseState, reason?: string) => {
    if (status.state === state) return;
    status = { state, since: Date.now(), ...(reason !== undefined && { reason }) };
    options.onChange?.(state, reason);
    if (state === "down") {
      const error = databaseDownError(options.name);
      for (const fail of [...waiting.keys()]) fail(error);
    }
  };

  const scheduleRetry = () => {
    if (stopped || retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      probe();
    }, settings.retryEveryMs);
    retry.unref?.();
  };

  function probe(): void {
    if (stopped || probing) return;
    const current = (client ??= options.probeClient());
    const started = Date.now();
    probing = new Promise<void>((done) => {
      let settled = false;
      const timer = setTimeout(() => {
        // Timers run before I/O in each turn of the event loop: when this process was too busy to
        // turn (a CPU-bound copy, a long synchronous step), the answer may be waiting unread on the
        // socket. Its callbacks run before setImmediate's, so the verdict waits for them.
        setImmediate(() => {
          if (settled) return;
          settled = true;
          // Work on the database was answered while the probe waited: slow, not frozen. No verdict;
          // the probe's own answer, when it comes, is not needed.
          if (lastWorkAnswer >= started) {
            done();
            // Work still waiting on it is asked about again, in case it froze since.
            if (waiting.size > 0) scheduleRetry();
            return;
          }
          // A frozen server keeps the connection half-open: end the client, the next probe starts afresh.
          if (client === current) client = undefined;
          current.end().catch(() => undefined);
          set("down", "no_answer");
          done();
        });
      }, settings.probeTimeoutMs);
      current.ping().then(
        () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          lastAnswer = Date.now();
          set("up");
          done();
        },
        (error: unknown) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          if (client === current) client = undefined;
          current.end().catch(() => undefined);
          set("down", unreachable(error) ? "unreachable" : "probe_failed");
          done();
        },
      );
    }).finally(() => {
      probing = undefined;
      if (status.state === "down") scheduleRetry();
    });
  }

  const health: DatabaseHealth = {
    name: options.name,
    status: () => status,
    check() {
      if (status.state === "down") throw databaseDownError(options.name);
    },
    suspect() {
      if (status.state === "down" || Date.now() - lastAnswer < settings.freshForMs) return;
      probe();
    },
    guard<T>(work: Promise<T>, answers = false): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const fail = (error: Error) => {
          waiting.delete(fail);
          reject(error);
        };
        waiting.set(fail, Date.now());
        watchWaiting();
        // Observes `work` either way: it never becomes an unhandled rejection.
        work.then(
          (value) => {
            waiting.delete(fail);
            if (answers) lastWorkAnswer = Date.now();
            resolve(value);
          },
          (error: unknown) => {
            waiting.delete(fail);
            if (unreachable(error)) health.suspect();
            reject(error);
          },
        );
      });
    },
    async stop() {
      stopped = true;
      clearInterval(watch);
      watch = undefined;
      clearTimeout(retry);
      retry = undefined;
      const last = client;
      client = undefined;
      await last?.end().catch(() => undefined);
    },
  };
  return health;
}
