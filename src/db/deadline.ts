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
    work.catch(() => undefined);
    if (this.expired()) return Promise.reject(this.error());
    return Promise.race([work, this.expiry()]);
  }

  /** Stops the timer (the work is done); later races still see the deadline by the clock. */
  dispose(): void {
    clearTimeout(this.#timer);
  }

  #timer: ReturnType<typeof setTimeout> | undefined;
  #expiry: Promise<never> | undefined;

  private expiry(): Promise<never> {
    if (!this.#expiry) {
      this.#expiry = new Promise<never>((_, reject) => {
        this.#timer = setTimeout(() => reject(this.error()), Math.max(0, this.remaining()));
        this.#timer.unref?.();
      });
      this.#expiry.catch(() => undefined);
    }
    return this.#expiry;
  }
}

/** The earlier of two deadlines (either may be missing). */
export function earliest(a: Deadline | undefined, b: Deadline | undefined): Deadline | undefined {
  if (!a) return b;
  if (!b) return a;
  return a.at <= b.at ? a : b;
}
