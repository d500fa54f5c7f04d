/**
 * Load for the scenarios: a few clients, each sending its next request when the last one is
 * answered, until told to stop — every answer kept with its kind and timing for the assertions.
 */
import type { Answer } from "./http.js";
import { sleep, type Cleanup } from "./processes.js";

export interface Sample extends Answer {
  kind: string;
}

export interface Load {
  samples: Sample[];
  /** Stops the clients and waits for their last requests. */
  stop(): Promise<Sample[]>;
}

/**
 * Runs `clients` loops of `next(client, iteration)`; each resolves with the kind of request it sent
 * and its answer. `pauseMs` between one client's requests (0: back to back). `cleanup` stops it if
 * the scenario fails before it does.
 */
export function runLoad(
  cleanup: Cleanup,
  clients: number,
  next: (client: number, iteration: number) => Promise<{ kind: string; answer: Answer } | undefined>,
  pauseMs = 0,
): Load {
  const samples: Sample[] = [];
  let stopped = false;
  const loops = Array.from({ length: clients }, async (_, client) => {
    for (let iteration = 0; !stopped; iteration++) {
      const result = await next(client, iteration);
      if (result) samples.push({ ...result.answer, kind: result.kind });
      if (pauseMs > 0 && !stopped) await sleep(pauseMs);
    }
  });
  const load: Load = {
    samples,
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return samples;
    },
  };
  cleanup.defer("load", () => load.stop());
  return load;
}

/** The p-th percentile (0–100) of `values`, nearest rank; NaN for none. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Counts by outcome ("200", "503 DATABASE_UNAVAILABLE", "ECONNRESET", …) for failure messages. */
export function tally(samples: Sample[], describe: (s: Sample) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const sample of samples) {
    const key = `${sample.kind} ${describe(sample)}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** Polls `probe` every `everyMs` until it is true or `withinMs` pass; resolves with the ms it took, or undefined. */
export async function waitFor(
  probe: () => Promise<boolean>,
  withinMs: number,
  everyMs = 100,
): Promise<number | undefined> {
  const started = performance.now();
  while (performance.now() - started < withinMs) {
    if (await probe().catch(() => false)) return performance.now() - started;
    await sleep(everyMs);
  }
  return undefined;
}
