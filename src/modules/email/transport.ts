/**
 * Transports: Resend through its SDK, and — with no API key — a development transport that records
 * each rendered message in `email.dev_messages` for a developer to read through the API. Outcomes are
 * classified once here: 429, 5xx, network failures and timeouts are retryable; any other 4xx is
 * permanent.
 */
import { Resend } from "resend";
import type { Router } from "../../db/router.js";
import { devMessages } from "./schema.js";

export interface OutgoingEmail {
  /** The send id: the Idempotency-Key of a single send, and the `send_id` tag webhooks carry back. */
  id: string;
  from: string;
  to: string;
  subject: string;
  html: string;
  text: string;
  headers?: Record<string, string> | null;
}

export type SendFailure = {
  ok: false;
  retryable: boolean;
  /** The provider's status, or null for a network failure or timeout. */
  status: number | null;
  error: string;
  /** From the provider's Retry-After header. */
  retryAfterMs?: number;
};
export type SendOutcome = { ok: true; providerIds: string[] } | SendFailure;

export interface SendOptions {
  idempotencyKey: string;
  signal?: AbortSignal;
}

export interface EmailTransport {
  readonly name: "resend" | "development";
  readonly maxBatchSize: number;
  /** Sends one message, or several in one request; one outcome for the whole request. */
  send(emails: OutgoingEmail[], options: SendOptions): Promise<SendOutcome>;
}

/** `Retry-After` in seconds or as an HTTP date, in milliseconds from now. */
export function parseRetryAfter(value: string | undefined | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export function createResendTransport(resend: Resend): EmailTransport {
  const payload = (email: OutgoingEmail) => ({
    from: email.from,
    to: email.to,
    subject: email.subject,
    html: email.html,
    text: email.text,
    headers: email.headers ?? undefined,
    tags: [{ name: "send_id", value: email.id }],
  });
  return {
    name: "resend",
    // Resend's batch endpoint takes at most 100 emails per call.
    maxBatchSize: 100,
    async send(emails, { idempotencyKey, signal }) {
      const result =
        emails.length === 1
          ? await resend.emails.send(payload(emails[0]!), { idempotencyKey, signal })
          : await resend.batch.send(emails.map(payload), { idempotencyKey, signal });
      if (!result.error) {
        const data = result.data as { id: string } | { data: { id: string }[] };
        return { ok: true, providerIds: "data" in data ? data.data.map((d) => d.id) : [data.id] };
      }
      const status = result.error.statusCode;
      // 409 concurrent_idempotent_requests: the same key is still being processed; try again later.
      const retryable =
        status === null || status === 429 || status >= 500 || result.error.name === "concurrent_idempotent_requests";
      return {
        ok: false,
        retryable,
        status,
        error: `${result.error.name}: ${result.error.message}`,
        retryAfterMs: parseRetryAfter(result.headers?.["retry-after"]),
      };
    },
  };
}

export function createDevelopmentTransport(router: Router): EmailTransport {
  return {
    name: "development",
    maxBatchSize: 100,
    async send(emails) {
      // A message references its send (send_id), so it is written in the database holding the send:
      // the dispatcher sends each database's rows pinned to that database, which the routed email
      // handle follows.
      const rows = await router
        .db("email")
        .insert(devMessages)
        .values(
          emails.map((e) => ({
            sendId: e.id,
            toAddress: e.to,
            fromAddress: e.from,
            subject: e.subject,
            html: e.html,
            text: e.text,
            headers: e.headers ?? null,
          })),
        )
        .returning({ id: devMessages.id });
      return { ok: true, providerIds: rows.map((r) => `dev_${r.id}`) };
    },
  };
}
