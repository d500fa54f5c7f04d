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
 * Databases: a tenant with a database of its own has its sends there, so each cycle makes one
 * claim-send-record pass per database of the topology, pinned to it (`router.onDatabase`): the
 * claim, the outcome, the audit events and the development transport's record all land beside the
 * rows. The dispatcher LISTENs on every database, since the outbox notifies where it wrote.
 */
import { createHash, randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import type { Router } from "../../db/router.js";
import type { Logger } from "../../logger.js";
import type { AuditModule } from "../audit/index.js";
import { createEmailDatabases } from "./databases.js";
import { EMAIL_CHANNEL } from "./outbox.js";
import { createWakeSignal } from "./wake-signal.js";
import type { EmailTransport, OutgoingEmail, SendFailure, SendOutcome } from "./transport.js";

export interface DispatcherOptions {
  /** Rows claimed (and sent in one batch request) per cycle, at most 100. Default 100. */
  batchSize?: number;
  /** How long a claim is held before another dispatcher may reclaim the row. Default 60 s. */
  leaseMs?: number;
  /**
   * A provider request is aborted (and retried) after this long; capped at half the lease. Default 30 s.
   * A request that is still running `min(requestTimeoutMs, 1 s)` after its abort ignored it: the cycle
   * stops waiting for it and its rows are retried when their lease runs out.
   */
  requestTimeoutMs?: number;
  /** Fallback poll when no NOTIFY arrives (retries coming due, missed notifications). Default 5 s. */
  pollIntervalMs?: number;
  /** First retry delay; doubles per attempt, with jitter. Default 1 s. */
  backoffBaseMs?: number;
  /** Longest retry delay. Default 1 h. */
  backoffMaxMs?: number;
  /** Claim-send-record cycles running at once in this process. Default 1. */
  concurrency?: number;
  /** Shows up in `claimed_by`; default a random id per dispatcher. */
  id?: string;
}

export interface Dispatcher {
  readonly id: string;
  /** Claims up to `limit` due rows, from each database in turn, and commits the claims (tests simulate a crash with it). */
  claim(limit?: number): Promise<ClaimedRow[]>;
  /** One cycle: claim, send, record, once per database. Returns how many rows it claimed in all. */
  dispatchOnce(): Promise<number>;
  /** Starts the background loops and the NOTIFY listener. */
  start(): Promise<void>;
  /** Stops the loops (aborting requests in flight) and returns this dispatcher's claimed rows to the queue. */
  stop(): Promise<void>;
}

export interface ClaimedRow {
  id: string;
  tenant_id: string | null;
  to_address: string;
  from_address: string | null;
  subject: string;
  html: string;
  text: string;
  headers: Record<string, string> | null;
  attempts: number;
  max_attempts: number;
  batch_key: string | null;
}

interface Deps {
  router: Router;
  audit: AuditModule;
  logger: Logger;
  transport: EmailTransport;
  from: string;
}

const SINGLE = "single";
const textArray = (values: string[]) => sql`array[${sql.join(values.map((v) => sql`${v}`), sql`, `)}]`;
const DISPATCHER_ACTOR = { type: "system" as const, id: "email-dispatcher" };

export function batchKeyOf(ids: string[]): string {
  return `b_${createHash("sha256").update([...ids].sort().join(",")).digest("hex")}`;
}

/** Exponential backoff with jitter (a random point in the upper half), never sooner than Retry-After. */
export function retryDelay(attempt: number, base: number, max: number, retryAfterMs?: number): number {
  const exponential = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  const jittered = exponential / 2 + Math.random() * (exponential / 2);
  return Math.max(jittered, retryAfterMs ?? 0);
}

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
    return await Promise.race([pending.then((value): Deadlined<T> => ({ settled: true, value, timedOut: timedOut() })), abandoned]);
  } finally {
    clearTimeout(timer);
    parent?.removeEventListener("abort", onParentAbort);
  }
}

interface Outcome {
  row: ClaimedRow;
  result: { ok: true; providerId: string } | SendFailure;
  /** Sent in a batch request (its rows keep their batch key for a retry). */
  batched: boolean;
}

export function createDispatcher(deps: Deps, options: DispatcherOptions = {}): Dispatcher {
  const { router, audit, logger, transport } = deps;
  const id = options.id ?? `dispatcher-${randomUUID()}`;
  const batchSize = Math.max(1, Math.min(options.batchSize ?? 100, transport.maxBatchSize));
  const leaseMs = options.leaseMs ?? 60_000;
  // A request outliving its lease could race a reclaim: keep it well inside.
  const requestTimeoutMs = Math.min(options.requestTimeoutMs ?? 30_000, Math.floor(leaseMs / 2));
  // Deadline plus grace stays within the lease, so an abandoned row is still ours until it expires.
  const abandonAfterMs = Math.min(requestTimeoutMs, 1_000);
  const pollIntervalMs = options.pollIntervalMs ?? 5_000;
  const backoffBaseMs = options.backoffBaseMs ?? 1_000;
  const backoffMaxMs = options.backoffMaxMs ?? 3_600_000;
  const concurrency = Math.max(1, options.concurrency ?? 1);
  const databases = createEmailDatabases(router);
  // Inside a pass pinned to one database, the email and audit handles are that database's.
  const db = () => router.db("email");
  const system = <T>(fn: () => Promise<T>) => router.withTenant("*", fn);

  let stopController = new AbortController();
  let loops: Promise<void>[] = [];
  let running = false;
  let stopping: Promise<void> | undefined;
  let unlisten: (() => Promise<void>) | undefined;
  const { wake, sleep } = createWakeSignal();

  /** Claims up to `limit` due rows of the database this pass is pinned to. */
  async function claimHere(limit: number): Promise<ClaimedRow[]> {
    return system(async () => {
      const rows = (await db().execute(sql`
        with due as (
          select id, batch_key from email.email_sends
          where status in ('queued', 'sending') and next_attempt_at <= now()
            and (lease_until is null or lease_until < now())
          order by next_attempt_at, batch_key nulls last, id
          limit ${limit}
          for update skip locked
        ), fresh as (
          select 'b_' || encode(sha256(convert_to(string_agg(id::text, ',' order by id::text), 'UTF8')), 'hex') as key
          from due where batch_key is null
          having count(*) > 1
        )
        update email.email_sends s
        set status = 'sending', claimed_by = ${id}, attempts = s.attempts + 1, updated_at = now(),
            lease_until = now() + make_interval(secs => ${leaseMs / 1000}),
            batch_key = coalesce(s.batch_key, (select key from fresh), ${SINGLE})
        from due where s.id = due.id
        returning s.id, s.tenant_id, s.to_address, s.from_address, s.subject, s.html, s.text, s.headers,
                  s.attempts, s.max_attempts, s.batch_key
      `)) as unknown as ClaimedRow[];
      return [...rows];
    });
  }

  async function claim(limit = batchSize): Promise<ClaimedRow[]> {
    const claimed: ClaimedRow[] = [];
    for (const database of databases.all()) {
      if (claimed.length >= limit) break;
      claimed.push(...(await router.onDatabase(database, () => claimHere(limit - claimed.length))));
    }
    return claimed;
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
  async function sendOne(rows: ClaimedRow[], idempotencyKey: string): Promise<SendOutcome | "abandoned"> {
    try {
      const answer = await withDeadline((signal) => transport.send(rows.map(toOutgoing), { idempotencyKey, signal }), {
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

  async function sendSingly(rows: ClaimedRow[]): Promise<Outcome[]> {
    const outcomes = await Promise.all(
      rows.map(async (row): Promise<Outcome[]> => {
        const outcome = await sendOne([row], row.id);
        if (outcome === "abandoned") return [];
        return [{ row, batched: false, result: outcome.ok ? { ok: true as const, providerId: outcome.providerIds[0]! } : outcome }];
      }),
    );
    return outcomes.flat();
  }

  /** Outcomes of the rows that got an answer; abandoned rows have none and stay claimed. */
  async function send(rows: ClaimedRow[]): Promise<Outcome[]> {
    const groups = new Map<string, ClaimedRow[]>();
    for (const row of rows) {
      const key = row.batch_key ?? SINGLE;
      groups.set(key, [...(groups.get(key) ?? []), row]);
    }
    const outcomes: Promise<Outcome[]>[] = [];
    for (const [key, group] of groups) {
      const intact = key !== SINGLE && group.length > 1 && batchKeyOf(group.map((r) => r.id)) === key;
      if (!intact) {
        outcomes.push(sendSingly(group));
        continue;
      }
      outcomes.push(
        sendOne(group, key).then((outcome): Promise<Outcome[]> | Outcome[] => {
          if (outcome === "abandoned") return [];
          if (outcome.ok) {
            return group.map((row, i) => ({ row, batched: true, result: { ok: true, providerId: outcome.providerIds[i]! } }));
          }
          // Refused as a whole (strict validation: nothing was sent), so each row goes alone.
          if (!outcome.retryable) return sendSingly(group);
          return group.map((row) => ({ row, batched: true, result: outcome }));
        }),
      );
    }
    return (await Promise.all(outcomes)).flat();
  }

  async function record(outcomes: Outcome[]): Promise<void> {
    const sent = outcomes.filter((o) => o.result.ok);
    const failed = outcomes.filter((o): o is Outcome & { result: SendFailure } => !o.result.ok);
    await system(async () => {
      if (sent.length > 0) {
        const ids = sent.map((o) => o.row.id);
        const providerIds = sent.map((o) => (o.result as { providerId: string }).providerId);
        // A webhook may already have moved the row past `sent`; the guard on claimed_by keeps a
        // dispatcher whose lease expired from clobbering whoever reclaimed the row.
        await db().execute(sql`
          update email.email_sends s
          set status = case when s.status = 'sending' then 'sent' else s.status end,
              provider_message_id = v.provider_id, sent_at = now(), updated_at = now(),
              lease_until = null, claimed_by = null, last_error = null
          from unnest(${textArray(ids)}::uuid[], ${textArray(providerIds)}::text[]) as v(id, provider_id)
          where s.id = v.id and s.claimed_by = ${id}
        `);
        const byTenant = new Map<string | null, string[]>();
        for (const o of sent) byTenant.set(o.row.tenant_id, [...(byTenant.get(o.row.tenant_id) ?? []), o.row.id]);
        for (const [tenantId, sendIds] of byTenant) {
          await audit.recordAuditEvent({
            action: "email.sent",
            actor: DISPATCHER_ACTOR,
            tenantId,
            target: { type: "email_send", id: sendIds[0]! },
            metadata: { sendIds, count: sendIds.length, transport: transport.name },
          });
        }
      }
      for (const { row, result, batched } of failed) await recordFailure(row, result, batched);
    });
  }

  async function recordFailure(row: ClaimedRow, result: SendFailure, batched: boolean) {
    const error = result.status ? `${result.status} ${result.error}` : result.error;
    if (result.retryable && stopController.signal.aborted) {
      // Our own shutdown aborted the request: not the row's fault, so no attempt is spent.
      await release([row.id]);
      return;
    }
    const exhausted = row.attempts >= row.max_attempts;
    if (!result.retryable || exhausted) {
      const status = result.retryable ? "dead" : "failed";
      await db().execute(sql`
        update email.email_sends set status = ${status}, last_error = ${error}, lease_until = null,
          claimed_by = null, updated_at = now()
        where id = ${row.id} and claimed_by = ${id}
      `);
      await audit.recordAuditEvent({
        action: `email.${status}`,
        actor: DISPATCHER_ACTOR,
        tenantId: row.tenant_id,
        target: { type: "email_send", id: row.id },
        metadata: { attempts: row.attempts, error, providerStatus: result.status },
      });
      return;
    }
    const delay = retryDelay(row.attempts, backoffBaseMs, backoffMaxMs, result.retryAfterMs);
    await db().execute(sql`
      update email.email_sends set status = 'queued', last_error = ${error}, lease_until = null, claimed_by = null,
        next_attempt_at = now() + make_interval(secs => ${delay / 1000}), updated_at = now(),
        batch_key = ${batched ? row.batch_key : SINGLE}
      where id = ${row.id} and claimed_by = ${id}
    `);
    await audit.recordAuditEvent({
      action: "email.retry_scheduled",
      actor: DISPATCHER_ACTOR,
      tenantId: row.tenant_id,
      target: { type: "email_send", id: row.id },
      metadata: { attempts: row.attempts, delayMs: Math.round(delay), error, providerStatus: result.status },
    });
  }

  /** Returns claimed rows of the pinned database to the queue without spending an attempt. */
  async function release(ids?: string[]) {
    await system(() =>
      db().execute(sql`
        update email.email_sends set status = 'queued', lease_until = null, claimed_by = null,
          attempts = greatest(attempts - 1, 0), updated_at = now()
        where claimed_by = ${id} and status = 'sending'
          ${ids ? sql`and id in ${ids}` : sql``}
      `),
    );
  }

  async function markDead(rows: ClaimedRow[]) {
    // Rows whose earlier attempts all crashed mid-send: claiming spent their last attempt.
    for (const row of rows) {
      await recordFailure(row, { ok: false, retryable: true, status: null, error: "attempts exhausted (lease expired)" }, false);
    }
  }

  async function dispatchOn(database: string): Promise<number> {
    return router.onDatabase(database, async () => {
      const claimed = await claimHere(batchSize);
      if (claimed.length === 0) return 0;
      const exhausted = claimed.filter((r) => r.attempts > r.max_attempts);
      const sendable = claimed.filter((r) => r.attempts <= r.max_attempts);
      if (exhausted.length > 0) await system(() => markDead(exhausted));
      if (sendable.length > 0) await record(await send(sendable));
      return claimed.length;
    });
  }

  async function dispatchOnce(): Promise<number> {
    let claimed = 0;
    let failure: Error | undefined;
    // One pass per database; a database that fails does not hold up the others' mail.
    for (const database of databases.all()) {
      try {
        claimed += await dispatchOn(database);
      } catch (error) {
        failure ??= new Error(`email dispatch on database '${database}' failed: ${(error as Error).message}`, { cause: error });
      }
    }
    if (failure) throw failure;
    return claimed;
  }

  async function loop() {
    while (running) {
      try {
        const claimed = await dispatchOnce();
        if (claimed < batchSize && running) await sleep(pollIntervalMs);
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
      running = true;
      // The outbox notifies in the database it wrote to: a moved tenant's mail wakes us from there.
      const listeners: { unlisten(): Promise<void> }[] = [];
      try {
        for (const database of databases.all()) listeners.push(await router.pool(database).sql.listen(EMAIL_CHANNEL, () => wake()));
      } catch (error) {
        running = false;
        await Promise.all(listeners.map((l) => l.unlisten().catch(() => undefined)));
        throw error;
      }
      unlisten = async () => {
        await Promise.all(listeners.map((l) => l.unlisten()));
      };
      loops = Array.from({ length: concurrency }, () => loop());
      logger.info("email dispatcher started", { dispatcher: id, transport: transport.name, batchSize, concurrency });
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
        for (const database of databases.all()) await router.onDatabase(database, () => release());
        logger.info("email dispatcher stopped", { dispatcher: id });
      })();
      return stopping;
    },
  };
}
