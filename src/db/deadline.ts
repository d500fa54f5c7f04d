/**
 * Deadlines: the moment by which some work — a request, a unit of work, a pool acquire — must be
 * done. A `Deadline` is carried in the request context, so every layer below a request (the unit of
 * work, the pool gate) gives up at the same moment instead of each waiting its own full timeout.
 *
 * Timers come from `setTimeout`, never `AbortSignal.timeout`: on Node 20 a pending
 * `AbortSignal.timeout` can be lost after a garbage collection (nodejs/node#57736), and the work it
 * guarded then waits forever.
 */
import { CommonErrors } from "../errors.js";

export class Deadline {
  constructor(
    /** Epoch milliseconds. */
    readonly at: number,
    /** What ran out, for the error: "request", "transaction", … */
    readonly label: string,
  ) {}

  static in(ms: number, label: string): Deadline {
    return new Deadline(Date.now() + ms, label);
  }

  remaining(): number {
    return this.at - Date.now();
  }

  expired(): boolean {
    return Date.now() >= this.at;
  }

  /** The error work gets when this deadline passes (503, Retry-After: the caller may simply retry). */
  error(): Error {
    return CommonErrors.DEADLINE_EXCEEDED(
      { deadline: this.label },
      `The ${this.label} took too long and was abandoned`,
    );
  }

  /**
   * `work`, or this deadline's error if it passes first. `work` goes on (nothing can stop a promise);
   * its eventual failure is observed so it is never an unhandled rejection. Callers that must not
   * act on a late result check `expired()` when it arrives. One timer serves every race of a
   * deadline (a unit of work races each of its levels against the same one).
   */
  race<T>(work: Promise<T>): Promise<T> {
    if (this.expired()) {
      work.catch(() => undefined);
      return Promise.reject(this.error());
    }
    return new Promise<T>((resolve, reject) => {
      this.#arm(reject);
      // Observes `work` either way: it never becomes an unhandled rejection.
      work.then(
        (value) => {
          this.#racing?.delete(reject);
          resolve(value);
        },
        (error: unknown) => {
          this.#racing?.delete(reject);
          reject(error);
        },
      );
    });
  }

  /** Stops the timer (the work is done); later races still see the deadline by the clock. */
  dispose(): void {
    clearTimeout(this.#timer);
  }

  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The races still waiting: failed together, with one error, when the timer fires. */
  #racing: Set<(error: Error) => void> | undefined;

  #arm(fail: (error: Error) => void): void {
    (this.#racing ??= new Set()).add(fail);
    if (this.#timer) return;
    this.#timer = setTimeout(
      () => {
        const error = this.error();
        for (const waiting of this.#racing ?? []) waiting(error);
        this.#racing?.clear();
      },
      Math.max(0, this.remaining()),
    );
    this.#timer.unref?.();
  }
}

/** The earlier of two deadlines (either may be missing). */
export function earliest(a: Deadline | undefined, b: Deadline | undefined): Deadline | undefined {
  if (!a) return b;
  if (!b) return a;
  return a.at <= b.at ? a : b;
}
