/**
 * Transports: Resend through its SDK, and — with no API key — a development transport that records
 * each rendered message in `email.dev_messages` for a developer to read through the API. Outcomes are
 * classified once here. Only a definite refusal is permanent: a 4xx answered in Resend's JSON error
 * shape, except 408, 429 and 409 `concurrent_idempotent_requests`. Everything else — 5xx, network
 * failures, timeouts, a non-JSON body (a proxy's page), an error body without a usable `statusCode`,
 * a success without message ids — is retryable, under the same Idempotency-Key, so a degraded
 * provider costs a delay, never a message.
 */
import type { Resend } from "resend";
import type { ModuleContext } from "../../db/module.js";
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
  /**
   * The HTTP status when the SDK tells it, else null: a network failure, a timeout, or an error body
   * without `statusCode` (Resend SDK 6 hands back a JSON error body as it is, without the status).
   */
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
      if (!result.error) return accepted(result.data, emails.length);
      return refused(result.error, result.headers);
    },
  };
}

/** A success carries one message id per email sent; anything else (a `null` body too) is retried. */
function accepted(data: unknown, count: number): SendOutcome {
  const items = count === 1 ? [data] : (data as { data?: unknown } | null)?.data;
  const ids = Array.isArray(items) ? items.map((item) => (item as { id?: unknown } | null)?.id) : [];
  if (ids.length === count && ids.every((id): id is string => typeof id === "string" && id.length > 0)) {
    return { ok: true, providerIds: ids };
  }
  return { ok: false, retryable: true, status: null, error: `unexpected answer: ${excerpt(data)}` };
}

/**
 * Resend SDK 6 builds `result.error` three ways: a network failure (statusCode null, headers null); a
 * body that is not JSON (statusCode = the HTTP status, name `application_error`); otherwise the parsed
 * body itself, whatever it holds — `{}`, `null`, a proxy's JSON — with no HTTP status beside it.
 * So a status is trusted only when it is an HTTP status code, and a 4xx is definite only when the
 * answer is JSON (a 4xx page from a proxy in front of Resend is not Resend refusing the message).
 */
function refused(error: unknown, headers: Record<string, string> | null): SendFailure {
  const { statusCode, name, message } = (typeof error === "object" && error !== null ? error : {}) as Record<
    string,
    unknown
  >;
  const status =
    typeof statusCode === "number" && Number.isInteger(statusCode) && statusCode >= 100 && statusCode <= 599
      ? statusCode
      : null;
  const json = /\bjson\b/i.test(headers?.["content-type"] ?? "");
  const definite =
    status !== null &&
    json &&
    status >= 400 &&
    status < 500 &&
    status !== 408 &&
    status !== 429 &&
    // The same key is still being processed: ask again later.
    name !== "concurrent_idempotent_requests";
  return {
    ok: false,
    retryable: !definite,
    status,
    error:
      typeof name === "string" && typeof message === "string"
        ? `${name}: ${message}`
        : `unexpected error body: ${excerpt(error)}`,
    retryAfterMs: parseRetryAfter(headers?.["retry-after"]),
  };
}

const excerpt = (value: unknown) => (JSON.stringify(value) ?? String(value)).slice(0, 200);

export function createDevelopmentTransport(context: ModuleContext): EmailTransport {
  return {
    name: "development",
    maxBatchSize: 100,
    async send(emails) {
      // A message references its send (send_id), so it is written beside the send: the dispatcher
      // sends each place's rows at that place, which the module's handle follows.
      const rows = await context
        .db()
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
