/**
 * The dispatcher: claims due `email_sends` rows with `FOR UPDATE SKIP LOCKED` under a lease (so any
 * number of instances share the queue without sending a row twice), commits the claim, sends outside
 * any transaction, then records the outcome.
 *
 * Idempotency: a row sent on its own always uses its id as the Idempotency-Key. Rows first claimed
 * together get a batch key — `b_` + sha256 of their sorted ids — stored on the rows in the claim
 * itself. A retried or reclaimed batch whose rows come back together is re-sent under the same key
 * (the provider answers from its idempotency cache if the first try got through). A batch that comes
 * back split, or that the provider refused outright (validation), falls back to one send per row
 * with the row's own key, and such rows never join a batch again (`batch_key = 'single'`).
 * Residual risk, accepted: a batch that reached the provider without us learning it and then comes
 * back split is sent per row under new keys; the claim orders by batch key so groups stay together.
 *
 * Deadlines: every provider request has one, from a timer this file holds (see `withDeadline`), and a
 * request that ignores its abort is abandoned so the cycle moves on; its rows stay claimed and come
 * back when their lease runs out, to be sent again under the same key.
 *
 * Audit: failures and dead rows get one event each; successful sends one `email.sent` event per batch
 * and tenant (metadata.sendIds lists the rows), to keep the hot path at a constant number of writes.
 *
 * Throughput: a cycle claims several batches in one statement (`batchesPerCycle`, default 5, each
 * with its own batch key) and sends them at once; its outcomes are one UPDATE and one
 * `recordAuditEvents` call (the same events as one by one), whatever they are. Several cycles run at once (`concurrency`, default 4), so while some wait for
 * the provider others claim and record; claims never overlap (SKIP LOCKED, then the lease). A
 * connection is held only for a claim or an outcome write, never while a provider request is in
 * flight, and the dispatcher holds at most `maxConnections` at once (default 2, a quarter of the
 * default pool), so the API keeps the rest. A 429 holds every cycle's next claim until its
 * Retry-After has passed: more cycles must not mean more refusals.
 *
 * Places: a tenant with a database of its own has its sends there, so a cycle claims at every place
 * the module's rows may be (`context.everywhere`) and sends and records each place's rows at that
 * place (`context.at`): the claim, the outcome, the audit events and the development transport's
 * record all land beside the rows. The dispatcher LISTENs everywhere (`context.listen`), since the
 * outbox notifies where it wrote.
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import type { ModuleContext, Place } from "../../db/module.js";
import type { Logger } from "../../logger.js";
import type { AuditModule } from "../audit/index.js";
import { createSemaphore, pause, withDeadline } from "./deadline.js";
import { batchKeyOf, changesOf, crashedOut, SINGLE, type ClaimedRow, type Outcome } from "./outcomes.js";
import { EMAIL_CHANNEL } from "./outbox.js";
import { createWakeSignal } from "./wake-signal.js";
import type { EmailTransport, OutgoingEmail, SendOptions, SendOutcome } from "./transport.js";
import { dispatcherSettings, type DispatcherOptions } from "./options.js";

export type { ClaimedRow } from "./outcomes.js";
export type { DispatcherOptions } from "./options.js";

export interface Dispatcher {
  readonly id: string;
  /** Claims up to `limit` due rows (default: a cycle's), from each place in turn, and commits the claims (tests simulate a crash with it). */
  claim(limit?: number): Promise<ClaimedRow[]>;
  /** One cycle: claim at every place, then send and record each place's rows. Returns how many rows it claimed in all. */
  dispatchOnce(): Promise<number>;
  /** Starts the background cycles (`concurrency` of them) and the NOTIFY listener. */
  start(): Promise<void>;
  /** Stops the loops (aborting requests in flight) and returns this dispatcher's claimed rows to the queue. */
  stop(): Promise<void>;
}

interface Deps {
  context: ModuleContext;
  audit: AuditModule;
  logger: Logger;
  transport: EmailTransport;
  from: string;
}

/** A cycle's error for the places that could not answer (their rows wait for the next cycle). */
const unreachable = (missing: { database: string; reason: string }[]) =>
  new Error(`email dispatch could not reach ${missing.map((m) => `'${m.database}' (${m.reason})`).join(", ")}`);

export function createDispatcher(deps: Deps, options: DispatcherOptions = {}): Dispatcher {
  const { context, audit, logger, transport } = deps;
  const id = options.id ?? `dispatcher-${randomUUID()}`;
  const {
    batchSize,
    cycleSize,
    leaseMs,
    requestTimeoutMs,
    abandonAfterMs,
    pollIntervalMs,
    backoffBaseMs,
    backoffMaxMs,
    concurrency,
    maxConnections,
  } = dispatcherSettings(options, transport.maxBatchSize);
  // Inside a unit at one place, the module's (and audit's) handles are that place's.
  const db = () => context.db();
  /**
   * Each unit of work the dispatcher opens waits for one of its connection slots: a unit holds at
   * most one connection of each pool, so the dispatcher never holds more than `maxConnections` of
   * any. Never taken from inside another (it would wait for a slot its caller holds).
   */
  const connections = createSemaphore(maxConnections);
  /** Platform work (every tenant's rows) at `place`, in a unit of its own, once a slot is free. */
  const atPlace = <T>(place: Place, fn: () => Promise<T>) => connections(() => context.at(place, fn));
  /** Platform work at every place in turn, each in a unit of its own, holding one slot throughout. */
  const everywhere = <T>(fn: () => Promise<T>) => connections(() => context.everywhere(fn));
  // The development transport "sends" by writing beside the send (a unit of its own at its place):
  // its sends count against the same slots. A provider's never do.
  const deliver = (place: Place, emails: OutgoingEmail[], options: SendOptions) =>
    transport.name === "development"
      ? atPlace(place, () => transport.send(emails, options))
      : transport.send(emails, options);

  let stopController = new AbortController();
  let loops: Promise<void>[] = [];
  let running = false;
  let stopping: Promise<void> | undefined;
  let unlisten: (() => Promise<void>) | undefined;
  // A 429 holds every cycle's next claim until then (its Retry-After, else the base backoff).
  let providerHoldUntil = 0;
  const { wake, sleep } = createWakeSignal();

  /**
   * Claims up to `limit` due rows of the place the unit runs at. Rows without a batch key are cut
   * into batches of `batchSize`, each keyed by its ids; a batch of one is `single`. A claimed row is
   * next due when its lease runs out (its next_attempt_at says so): rows in flight sit beyond
   * `now()` in the claim's index, so no claim walks past them, and a batch whose dispatcher died
   * comes back due together.
   */
  async function claimHere(limit: number): Promise<ClaimedRow[]> {
    // The order is email_sends_claim_idx's (drizzle/0012): the rows come off the front of the
    // index, however many due rows share a next_attempt_at. Which of equal rows goes first does not
    // matter, so ties are left in the index's order, the heap's: a backlog enqueued at once is
    // claimed as it lies on disk, not scattered over it by random ids.
    // The planner must not be left to choose: it cannot know that row-level security's
    // `current_setting('sv.tenant_id') = '*'` admits every row, estimates that ~1.5 % of the due rows
    // pass, and with a limit near that estimate reads and sorts them all instead (measured: 260 ms a
    // claim with 39k due rows, against 17 ms through the index). Sorting off, for this transaction
    // only, leaves the index as the one ordered path.
    await db().execute(sql`select set_config('enable_sort', 'off', true)`);
    const rows = (await db().execute(sql`
      with due as (
        select id, batch_key from email.email_sends
        where status in ('queued', 'sending') and next_attempt_at <= now()
          and (lease_until is null or lease_until < now())
        order by next_attempt_at, batch_key nulls last
        limit ${limit}
        for update skip locked
      ), unkeyed as (
        select id, (row_number() over (order by id) - 1) / ${batchSize} as batch from due where batch_key is null
      ), fresh as (
        select batch, 'b_' || encode(sha256(convert_to(string_agg(id::text, ',' order by id::text), 'UTF8')), 'hex') as key
        from unkeyed group by batch
        having count(*) > 1
      )
      update email.email_sends s
      set status = 'sending', claimed_by = ${id}, attempts = s.attempts + 1, updated_at = now(),
          lease_until = now() + make_interval(secs => ${leaseMs / 1000}),
          next_attempt_at = now() + make_interval(secs => ${leaseMs / 1000}),
          batch_key = coalesce(s.batch_key, fresh.key, ${SINGLE})
      from due left join unkeyed using (id) left join fresh using (batch)
      where s.id = due.id
      returning s.id, s.tenant_id, s.to_address, s.from_address, s.subject, s.html, s.text, s.headers,
                s.attempts, s.max_attempts, s.batch_key
    `)) as unknown as ClaimedRow[];
    return [...rows];
  }

  async function claim(limit = cycleSize): Promise<ClaimedRow[]> {
    let remaining = limit;
    // Places after the limit is reached answer at once, claiming nothing.
    const { results, missing } = await everywhere(async () => {
      if (remaining <= 0) return [];
      const rows = await claimHere(remaining);
      remaining -= rows.length;
      return rows;
    });
    if (missing.length > 0) throw unreachable(missing);
    return results.flat();
  }

  const toOutgoing = (row: ClaimedRow): OutgoingEmail => ({
    id: row.id,
    from: row.from_address ?? deps.from,
    to: row.to_address,
    subject: row.subject,
    html: row.html,
    text: row.text,
    headers: row.headers,
  });

  /** The request's outcome, or "abandoned" when it ignored its abort (its rows are left to their lease). */
  async function sendOne(place: Place, rows: ClaimedRow[], idempotencyKey: string): Promise<SendOutcome | "abandoned"> {
    try {
      const answer = await withDeadline((signal) => deliver(place, rows.map(toOutgoing), { idempotencyKey, signal }), {
        timeoutMs: requestTimeoutMs,
        graceMs: abandonAfterMs,
        parent: stopController.signal,
      });
      // The SDK reports an aborted fetch as a network failure (no status); say what happened.
      if (answer.settled && answer.timedOut && !answer.value.ok && answer.value.status === null) {
        return { ...answer.value, error: `no answer within ${requestTimeoutMs} ms` };
      }
      if (answer.settled) return answer.value;
      logger.warn("email provider request ignored its abort; its rows wait for their lease", {
        dispatcher: id,
        sendIds: rows.map((r) => r.id),
      });
      return "abandoned";
    } catch (error) {
      return { ok: false, retryable: true, status: null, error: (error as Error).message ?? String(error) };
    }
  }

  async function sendSingly(place: Place, rows: ClaimedRow[]): Promise<Outcome[]> {
    const outcomes = await Promise.all(
      rows.map(async (row): Promise<Outcome[]> => {
        const outcome = await sendOne(place, [row], row.id);
        if (outcome === "abandoned") return [];
        return [
          {
            row,
            batched: false,
            result: outcome.ok ? { ok: true as const, providerId: outcome.providerIds[0]! } : outcome,
          },
        ];
      }),
    );
    return outcomes.flat();
  }

  /** Outcomes of the rows that got an answer; abandoned rows have none and stay claimed. */
  async function send(place: Place, rows: ClaimedRow[]): Promise<Outcome[]> {
    const groups = new Map<string, ClaimedRow[]>();
    for (const row of rows) {
      const key = row.batch_key ?? SINGLE;
      const group = groups.get(key);
      if (group) group.push(row);
      else groups.set(key, [row]);
    }
    const outcomes: Promise<Outcome[]>[] = [];
    for (const [key, group] of groups) {
      const intact = key !== SINGLE && group.length > 1 && batchKeyOf(group.map((r) => r.id)) === key;
      if (!intact) {
        outcomes.push(sendSingly(place, group));
        continue;
      }
      outcomes.push(
        sendOne(place, group, key).then((outcome): Promise<Outcome[]> | Outcome[] => {
          if (outcome === "abandoned") return [];
          if (outcome.ok) {
            return group.map((row, i) => ({
              row,
              batched: true,
              result: { ok: true, providerId: outcome.providerIds[i]! },
            }));
          }
          // Refused as a whole (strict validation: nothing was sent), so each row goes alone.
          if (!outcome.retryable) return sendSingly(place, group);
          return group.map((row) => ({ row, batched: true, result: outcome }));
        }),
      );
    }
    return (await Promise.all(outcomes)).flat();
  }

  /**
   * Writes what the outcomes make of their rows — sent, retried, failed, dead, or given back — with one
   * UPDATE, and their audit events with one INSERT, in one unit at their place: a cycle's writes cost the same
   * whatever its outcomes.
   */
  async function record(place: Place, outcomes: Outcome[]): Promise<void> {
    if (outcomes.length === 0) return;
    const { changes, events } = changesOf(outcomes, {
      shuttingDown: stopController.signal.aborted,
      backoffBaseMs,
      backoffMaxMs,
      transport: transport.name,
    });
    await atPlace(place, async () => {
      // A webhook may already have moved a row past `sending`: it keeps that status. The guard on
      // claimed_by keeps a dispatcher whose lease expired from clobbering whoever reclaimed the row.
      await db().execute(sql`
        update email.email_sends s
        set status = case when s.status = 'sending' then v.status else s.status end,
            provider_message_id = coalesce(v.provider_id, s.provider_message_id),
            sent_at = case when v.status = 'sent' then now() else s.sent_at end,
            last_error = case when v.refund then s.last_error else v.last_error end,
            next_attempt_at = case when v.refund then now()
                                   else coalesce(now() + make_interval(secs => v.retry_in_ms / 1000), s.next_attempt_at) end,
            batch_key = coalesce(v.batch_key, s.batch_key),
            attempts = case when v.refund then greatest(s.attempts - 1, 0) else s.attempts end,
            lease_until = null, claimed_by = null, updated_at = now()
        from jsonb_to_recordset(${JSON.stringify(changes)}::jsonb)
          as v(id uuid, status text, provider_id text, last_error text, retry_in_ms float8, batch_key text, refund boolean)
        where s.id = v.id and s.claimed_by = ${id}
      `);
      await audit.recordAuditEvents(events);
    });
  }

  /** Returns this dispatcher's claimed rows of the unit's place to the queue, due now, without spending an attempt. */
  async function releaseHere() {
    await db().execute(sql`
      update email.email_sends set status = 'queued', lease_until = null, claimed_by = null,
        attempts = greatest(attempts - 1, 0), next_attempt_at = now(), updated_at = now()
      where claimed_by = ${id} and status = 'sending'
    `);
  }

  /** Sends the rows claimed at `place` and records their outcomes there. */
  async function sendAndRecord(place: Place, claimed: ClaimedRow[]): Promise<void> {
    const sendable = claimed.filter((r) => r.attempts <= r.max_attempts);
    const outcomes = sendable.length > 0 ? await send(place, sendable) : [];
    for (const { result } of outcomes) {
      if (!result.ok && result.status === 429) {
        providerHoldUntil = Math.max(providerHoldUntil, Date.now() + (result.retryAfterMs ?? backoffBaseMs));
      }
    }
    await record(place, [...claimed.filter((r) => r.attempts > r.max_attempts).map(crashedOut), ...outcomes]);
  }

  async function dispatchOnce(): Promise<number> {
    const { results, places, missing } = await everywhere(() => claimHere(cycleSize));
    // A place that fails does not hold up the others' mail: its failure is reported once they are done.
    const passes = await Promise.allSettled(
      results.map((claimed, i) => (claimed.length > 0 ? sendAndRecord(places[i]!, claimed) : undefined)),
    );
    const failed = passes.findIndex((p) => p.status === "rejected");
    if (failed >= 0) {
      const error = (passes[failed] as PromiseRejectedResult).reason as Error;
      throw new Error(`email dispatch at '${places[failed]}' failed: ${error.message}`, { cause: error });
    }
    if (missing.length > 0) throw unreachable(missing);
    return results.reduce((sum, claimed) => sum + claimed.length, 0);
  }

  async function loop() {
    while (running) {
      try {
        const held = providerHoldUntil - Date.now();
        if (held > 0) await pause(held, stopController.signal);
        if (!running) break;
        const claimed = await dispatchOnce();
        if (claimed < cycleSize && running) await sleep(pollIntervalMs);
      } catch (error) {
        logger.error("email dispatcher cycle failed", { dispatcher: id, error: (error as Error).message });
        if (running) await sleep(Math.min(pollIntervalMs, 1_000));
      }
    }
  }

  return {
    id,
    claim,
    dispatchOnce,
    async start() {
      if (running) return;
      if (stopping) await stopping;
      stopping = undefined;
      stopController = new AbortController();
      providerHoldUntil = 0;
      running = true;
      // The outbox notifies where it wrote: a moved tenant's mail wakes us from its own database.
      const listening = await context
        .listen(EMAIL_CHANNEL, () => wake())
        .catch((error: Error) => {
          running = false;
          throw error;
        });
      if (listening.partial) {
        running = false;
        await listening.unlisten();
        throw new Error("email dispatcher: LISTEN failed on a database that holds sends; not started");
      }
      unlisten = () => listening.unlisten();
      loops = Array.from({ length: concurrency }, () => loop());
      logger.info("email dispatcher started", {
        dispatcher: id,
        transport: transport.name,
        batchSize,
        batchesPerCycle: cycleSize / batchSize,
        concurrency,
        maxConnections,
      });
    },
    stop() {
      stopping ??= (async () => {
        running = false;
        stopController.abort();
        wake();
        await Promise.all(loops);
        loops = [];
        await unlisten?.().catch(() => undefined);
        unlisten = undefined;
        const { missing } = await everywhere(() => releaseHere());
        for (const gap of missing)
          logger.warn("email dispatcher left its claimed rows to their lease", { dispatcher: id, ...gap });
        logger.info("email dispatcher stopped", { dispatcher: id });
      })();
      return stopping;
    },
  };
}
