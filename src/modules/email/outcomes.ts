/**
 * What a cycle's send outcomes make of their rows: sent, retried after a backoff, failed, dead, or
 * given back (our own shutdown aborted the request), and the audit events that say so. Pure: the
 * dispatcher writes the result with one UPDATE and one audit INSERT per cycle and place.
 */
import { createHash } from "node:crypto";
import type { AuditEventInput } from "../audit/index.js";
import type { SendFailure } from "./transport.js";

/** The key of a row that is sent on its own (its id is the Idempotency-Key). */
export const SINGLE = "single";
const DISPATCHER_ACTOR = { type: "system" as const, id: "email-dispatcher" };

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

export function batchKeyOf(ids: string[]): string {
  return `b_${createHash("sha256")
    .update([...ids].sort().join(","))
    .digest("hex")}`;
}

/** Exponential backoff with jitter (a random point in the upper half), never sooner than Retry-After. */
export function retryDelay(attempt: number, base: number, max: number, retryAfterMs?: number): number {
  const exponential = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  const jittered = exponential / 2 + Math.random() * (exponential / 2);
  return Math.max(jittered, retryAfterMs ?? 0);
}

export interface Outcome {
  row: ClaimedRow;
  /** The rows one request answered share this object: a retried batch gets one delay from it. */
  result: { ok: true; providerId: string } | SendFailure;
  /** Sent in a batch request (its rows keep their batch key for a retry). */
  batched: boolean;
}

/** What an outcome makes of its row: one element of the cycle's outcome UPDATE. */
export interface RowChange {
  id: string;
  status: "sent" | "queued" | "failed" | "dead";
  provider_id: string | null;
  last_error: string | null;
  /** Queued for a retry: due again this long from now. */
  retry_in_ms: number | null;
  /** Queued for a retry: the key it comes back under (its batch's, or `single`). */
  batch_key: string | null;
  /** Queued because our own shutdown aborted the request: the attempt is given back. */
  refund: boolean;
}

// Rows whose earlier attempts all crashed mid-send: claiming spent their last attempt.
export const crashedOut = (row: ClaimedRow): Outcome => ({
  row,
  batched: false,
  result: { ok: false, retryable: true, status: null, error: "attempts exhausted (lease expired)" },
});

/**
 * The row changes and audit events of a cycle's outcomes: one `email.sent` event per tenant (its
 * sendIds), one event per failure, retry or dead row.
 */
export function changesOf(
  outcomes: Outcome[],
  {
    shuttingDown,
    backoffBaseMs,
    backoffMaxMs,
    transport,
  }: { shuttingDown: boolean; backoffBaseMs: number; backoffMaxMs: number; transport: string },
): { changes: RowChange[]; events: AuditEventInput[] } {
  const changes: RowChange[] = [];
  const sentByTenant = new Map<string | null, string[]>();
  const failureEvents: AuditEventInput[] = [];
  const delays = new Map<SendFailure, number>();
  for (const { row, result, batched } of outcomes) {
    const change: RowChange = {
      id: row.id,
      status: "sent",
      provider_id: null,
      last_error: null,
      retry_in_ms: null,
      batch_key: null,
      refund: false,
    };
    if (result.ok) {
      changes.push({ ...change, provider_id: result.providerId });
      const sendIds = sentByTenant.get(row.tenant_id);
      if (sendIds) sendIds.push(row.id);
      else sentByTenant.set(row.tenant_id, [row.id]);
      continue;
    }
    const error = result.status ? `${result.status} ${result.error}` : result.error;
    if (result.retryable && shuttingDown) {
      // Our own shutdown aborted the request: not the row's fault, so no attempt is spent.
      changes.push({ ...change, status: "queued", refund: true });
      continue;
    }
    const target = { type: "email_send", id: row.id };
    if (!result.retryable || row.attempts >= row.max_attempts) {
      const status = result.retryable ? "dead" : "failed";
      changes.push({ ...change, status, last_error: error });
      failureEvents.push({
        action: `email.${status}`,
        actor: DISPATCHER_ACTOR,
        tenantId: row.tenant_id,
        target,
        metadata: { attempts: row.attempts, error, providerStatus: result.status },
      });
      continue;
    }
    // One delay per request, so the rows of a retried batch come back due together.
    let delay = delays.get(result);
    if (delay === undefined)
      delays.set(result, (delay = retryDelay(row.attempts, backoffBaseMs, backoffMaxMs, result.retryAfterMs)));
    changes.push({
      ...change,
      status: "queued",
      last_error: error,
      retry_in_ms: delay,
      batch_key: batched ? row.batch_key : SINGLE,
    });
    failureEvents.push({
      action: "email.retry_scheduled",
      actor: DISPATCHER_ACTOR,
      tenantId: row.tenant_id,
      target,
      metadata: { attempts: row.attempts, delayMs: Math.round(delay), error, providerStatus: result.status },
    });
  }
  const sentEvents = [...sentByTenant].map(
    ([tenantId, sendIds]): AuditEventInput => ({
      action: "email.sent",
      actor: DISPATCHER_ACTOR,
      tenantId,
      target: { type: "email_send", id: sendIds[0]! },
      metadata: { sendIds, count: sendIds.length, transport },
    }),
  );
  return { changes, events: [...sentEvents, ...failureEvents] };
}
