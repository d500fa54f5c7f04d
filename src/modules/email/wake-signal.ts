/**
 * How the dispatcher's cycles wait: `sleep(ms)` until the poll interval passes or `wake()` is called
 * (a NOTIFY from the outbox, or stop). A wake-up that comes while no cycle sleeps — a NOTIFY during a
 * pass, whose claim may have run before that commit — is remembered: the next sleep returns at once
 * instead of waiting out the poll.
 */
export function createWakeSignal() {
  let wakeUp: (() => void) | undefined;
  let wakePromise: Promise<void> | undefined;
  let wokenMeanwhile = false;

  return {
    /** Ends every current sleep, or the next one when nobody sleeps. */
    wake(): void {
      if (!wakeUp) {
        wokenMeanwhile = true;
        return;
      }
      wakeUp();
      wakeUp = undefined;
      wakePromise = undefined;
    },
    /** Resolves after `ms`, or on the first wake-up. */
    sleep(ms: number): Promise<void> {
      if (wokenMeanwhile) {
        wokenMeanwhile = false;
        return Promise.resolve();
      }
      wakePromise ??= new Promise<void>((resolve) => (wakeUp = resolve));
      let timer: NodeJS.Timeout | undefined;
      return Promise.race([wakePromise, new Promise<void>((r) => (timer = setTimeout(r, ms)))]).finally(() =>
        clearTimeout(timer),
      );
    },
  };
}
