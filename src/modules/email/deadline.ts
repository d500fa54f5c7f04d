/**
 * Time and concurrency for the dispatcher: a deadline on every provider request (one that ignores
 * its abort is left behind), a semaphore on connection slots, and a pause that ends on abort.
 */
/** A request settled (in time, or after its deadline aborted it), or was abandoned: it ignored its abort. */
export type Deadlined<T> = { settled: true; value: T; timedOut: boolean } | { settled: false };

/**
 * Runs `request` with a signal that aborts after `timeoutMs`, or as soon as `parent` aborts. The
 * deadline is a `setTimeout` held here, not `AbortSignal.timeout`: on Node 20 a pending
 * `AbortSignal.timeout` combined through `AbortSignal.any` can be garbage-collected and never fire
 * (nodejs/node#57736), and one hung request then stalls the caller for good. A request still running
 * `graceMs` after its abort ignored it: it is left to finish on its own (its result and any rejection
 * dropped) and `{ settled: false }` comes back instead.
 *
 * @example
 * const answer = await withDeadline((signal) => fetch(url, { signal }), { timeoutMs: 5_000, graceMs: 1_000 });
 * if (!answer.settled) logger.warn("the request ignored its abort and was left behind");
 */
export async function withDeadline<T>(
  request: (signal: AbortSignal) => Promise<T>,
  { timeoutMs, graceMs, parent }: { timeoutMs: number; graceMs: number; parent?: AbortSignal },
): Promise<Deadlined<T>> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let abandon!: () => void;
  const abandoned = new Promise<Deadlined<T>>((resolve) => (abandon = () => resolve({ settled: false })));
  const abort = (reason: unknown) => {
    if (controller.signal.aborted) return;
    clearTimeout(timer);
    controller.abort(reason);
    timer = setTimeout(abandon, graceMs);
  };
  const onParentAbort = () => abort(parent!.reason);
  timer = setTimeout(() => abort(new DOMException(`no answer within ${timeoutMs} ms`, "TimeoutError")), timeoutMs);
  if (parent?.aborted) onParentAbort();
  else parent?.addEventListener("abort", onParentAbort, { once: true });
  const pending = (async () => request(controller.signal))();
  pending.catch(() => undefined);
  try {
    const timedOut = () => (controller.signal.reason as Error | undefined)?.name === "TimeoutError";
    return await Promise.race([
      pending.then((value): Deadlined<T> => ({ settled: true, value, timedOut: timedOut() })),
      abandoned,
    ]);
  } finally {
    clearTimeout(timer);
    parent?.removeEventListener("abort", onParentAbort);
  }
}

/** At most `size` calls of `fn` run at once; the others wait their turn, in order. */
export function createSemaphore(size: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active < size) active++;
    else await new Promise<void>((turn) => waiting.push(turn));
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}

/** Resolves after `ms`, or as soon as `signal` aborts. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    if (signal.aborted) done();
    else signal.addEventListener("abort", done, { once: true });
  });
}
