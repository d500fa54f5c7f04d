/**
 * The outbox relay: applies the effects units of work left in `platform.outbox` (outbox.ts) to
 * their target databases, exactly once, after the units committed.
 *
 * One loop per source database. A step claims a bounded batch (`FOR UPDATE SKIP LOCKED`, then a
 * lease, committed at once: no connection is held while the targets are written), applies each
 * target's effects in one transaction there that also records their keys in
 * `platform.outbox_applied`, then deletes them from the source. A relay that dies between the two
 * commits leaves the rows to their lease; the next claim finds their keys applied and only deletes
 * them — nothing is applied twice, nothing is lost. A target that cannot answer keeps its effects
 * waiting (backoff up to a minute) without holding up the other targets. Loops wake on the
 * outbox's NOTIFY (sent at commit) and poll every `pollIntervalMs` in case one was missed.
 *
 * Every step has a deadline; `stop()` ends the loops and waits for the steps in flight.
 */
import { sql } from "drizzle-orm";
import { transientError } from "../errors.js";
import type { Logger } from "../logger.js";
import { Deadline } from "./deadline.js";
import { effectStatement, type Effect } from "./outbox.js";
import type { Router } from "./router.js";

export interface OutboxRelayOptions {
  /** Effects claimed per step and source database (default 100). */
  batchSize?: number;
  /** Longest sleep between steps when no NOTIFY comes (default 2 s). */
  pollIntervalMs?: number;
  /** How long a claim is the relay's (default 30 s); a step ends well within it. */
  leaseMs?: number;
  logger?: Logger;
}

/** How far one database's outbox is behind: for `/ready` and monitoring. */
export type OutboxLag =
  | { database: string; pending: number; oldestSeconds: number }
  | { database: string; error: string };

export interface OutboxRelay {
  /** Starts one loop per database (idempotent). */
  start(): void;
  /** Applies one batch of `source`'s effects (every database's when omitted); returns how many were claimed. */
  drainOnce(source?: string): Promise<number>;
  /** Stops the loops and waits for the steps in flight (idempotent). */
  stop(): Promise<void>;
}

interface Claimed {
  key: string;
  target: string;
  effect: Effect;
}

const CHANNEL = "sv_outbox";

/**
 * The outbox of every database: how many effects wait and how old the oldest is. A database that
 * does not answer within `timeoutMs` is reported with the error's code, not thrown.
 *
 * @example
 * const lag = await outboxLag(sdk.router); // [{ database: "main", pending: 0, oldestSeconds: 0 }, ...]
 */
export async function outboxLag(router: Router, timeoutMs = 2_000): Promise<OutboxLag[]> {
  return Promise.all(
    router.databases().map(async (database): Promise<OutboxLag> => {
      try {
        const [row] = await Deadline.in(timeoutMs, "outbox lag").race(
          router.pool(database).sql<{ pending: number; oldest: number }[]>`
            select count(*)::int as pending,
                   coalesce(extract(epoch from now() - min(created_at)), 0)::float8 as oldest
            from platform.outbox`,
        );
        return { database, pending: row!.pending, oldestSeconds: Math.round(row!.oldest * 10) / 10 };
      } catch (error) {
        return { database, error: transientError(error)?.code ?? (error as Error).message };
      }
    }),
  );
}

export function createOutboxRelay(router: Router, options: OutboxRelayOptions = {}): OutboxRelay {
  const batchSize = options.batchSize ?? 100;
  const pollIntervalMs = options.pollIntervalMs ?? 2_000;
  const leaseMs = options.leaseMs ?? 30_000;
  const stepMs = Math.floor(leaseMs / 2);
  const logger = options.logger;
  let running = false;
  let loops: Promise<void>[] = [];
  let unlisten: (() => Promise<void>)[] = [];
  const sleepers = new Map<string, () => void>();
  const woken = new Set<string>();

  const wake = (database: string) => {
    const resolve = sleepers.get(database);
    if (resolve) resolve();
    else woken.add(database);
  };
  const sleep = (database: string, ms: number) =>
    new Promise<void>((resolve) => {
      if (woken.delete(database) || !running) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        sleepers.delete(database);
        resolve();
      }
      sleepers.set(database, done);
    });

  /** Applies one target's effects; returns the keys applied (or found applied already). */
  async function applyAt(target: string, claimed: Claimed[], deadline: Deadline): Promise<string[]> {
    const done: string[] = [];
    const apply = (batch: Claimed[]) =>
      deadline.race(
        router.pool(target).db.transaction(async (tx) => {
          await tx.execute(sql`select set_config('sv.tenant_id', '*', true)`);
          const fresh = await tx.execute<{ key: string }>(sql`
            insert into platform.outbox_applied (key)
            select unnest(${`{${batch.map((c) => c.key).join(",")}}`}::uuid[]) on conflict do nothing returning key::text`);
          const news = new Set(fresh.map((r) => r.key));
          for (const c of batch) if (news.has(c.key)) await tx.execute(effectStatement(router, c.effect));
        }),
      );
    try {
      await apply(claimed);
      done.push(...claimed.map((c) => c.key));
    } catch (error) {
      if (transientError(error) || claimed.length === 1) throw error;
      // One bad effect must not hold the batch back: each alone, the bad one reported and left waiting.
      for (const c of claimed) {
        try {
          await apply([c]);
          done.push(c.key);
        } catch (single) {
          if (transientError(single)) throw single;
          logger?.error("outbox effect could not be applied", { key: c.key, target, error: String(single) });
        }
      }
    }
    return done;
  }

  async function drainSource(source: string): Promise<number> {
    const pool = router.pool(source);
    const deadline = Deadline.in(stepMs, "outbox relay step");
    try {
      const claimed = await deadline.race(
        pool.sql<Claimed[]>`
          update platform.outbox o
             set claimed_until = now() + make_interval(secs => ${leaseMs / 1000}), attempts = o.attempts + 1
           where o.id in (select id from platform.outbox
                           where claimed_until is null or claimed_until < now()
                           order by id limit ${batchSize} for update skip locked)
          returning o.key::text as key, o.target, o.effect`,
      );
      const byTarget = new Map<string, Claimed[]>();
      for (const c of claimed) byTarget.set(c.target, [...(byTarget.get(c.target) ?? []), c]);
      const applied: string[] = [];
      for (const [target, group] of byTarget) {
        try {
          if (target === source) throw new Error(`effect targets its own database '${source}'`);
          applied.push(...(await applyAt(target, group, deadline)));
        } catch (error) {
          const reason = transientError(error)?.code ?? (error as Error).message;
          logger?.warn("outbox effects wait for their target", { source, target, count: group.length, reason });
          // Back off: 1 s, doubling with the attempts, at most a minute.
          await deadline.race(pool.sql`
            update platform.outbox set last_error = ${reason},
              claimed_until = now() + make_interval(secs => least(60, power(2, least(attempts, 6)) / 2))
            where key = any(${`{${group.map((c) => c.key).join(",")}}`}::uuid[])`);
        }
      }
      if (applied.length > 0)
        await deadline.race(pool.sql`delete from platform.outbox where key = any(${`{${applied.join(",")}}`}::uuid[])`);
      return claimed.length;
    } finally {
      deadline.dispose();
    }
  }

  async function loop(source: string) {
    while (running) {
      let claimed = 0;
      try {
        claimed = await drainSource(source);
      } catch (error) {
        logger?.warn("outbox relay step failed", { source, reason: transientError(error)?.code ?? String(error) });
      }
      if (claimed < batchSize && running) await sleep(source, pollIntervalMs);
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      for (const database of router.databases()) {
        // A database that cannot LISTEN now is polled; its notifications resume when it reconnects.
        router
          .pool(database)
          .sql.listen(CHANNEL, () => wake(database))
          .then(async (l) => {
            if (running) unlisten.push(() => l.unlisten());
            else await l.unlisten();
          })
          .catch(() => undefined);
        loops.push(loop(database));
      }
    },
    async drainOnce(source) {
      const sources = source ? [source] : router.databases();
      let claimed = 0;
      for (const database of sources) claimed += await drainSource(database);
      return claimed;
    },
    async stop() {
      if (!running) return;
      running = false;
      for (const resolve of [...sleepers.values()]) resolve();
      await Promise.all(loops);
      loops = [];
      await Promise.all(unlisten.map((u) => u().catch(() => undefined)));
      unlisten = [];
    },
  };
}
