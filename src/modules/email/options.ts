/**
 * What the email module is given: its options (from the app's configuration), the modules created
 * before it, and the port through which it learns who a user is.
 */
import type { AuditModule } from "../audit/index.js";
import type { EmailTemplateDefinition } from "./templates.js";

export interface EmailOptions {
  /** Sender of every message, e.g. `Acme <no-reply@acme.test>`. */
  from?: string;
  /** Without a key, the development transport records messages instead of sending them. */
  resendApiKey?: string;
  /**
   * `resend` (needs `resendApiKey`), `log` (nothing is delivered: one log line per message, without
   * its subject, body or links) or `development` (recorded for /dev/mail). Default: `resend` with a
   * key, else `development`.
   */
  transport?: "resend" | "log" | "development";
  /** Point the Resend SDK elsewhere (a local stand-in in tests). */
  resendBaseUrl?: string;
  /** Verifies Resend webhooks (Svix signatures). */
  webhookSecret?: string;
  /** Signs one-click unsubscribe tokens. Required with `resendApiKey`. */
  unsubscribeSecret?: string;
  /** Public base URL, for links in mail (unsubscribe). */
  publicUrl?: string;
  /** Run the dispatcher in this process (default false in the SDK; `npm start` turns it on). */
  dispatcher?: boolean;
  /** Tuning of the dispatcher (batch size, lease, backoff, poll interval, concurrency). */
  dispatcherOptions?: DispatcherOptions;
  /** Your own template definitions, beside the shipped defaults (same key: yours wins). */
  templates?: EmailTemplateDefinition[];
  /**
   * Outside `production` (given explicitly) the development transport's messages are readable
   * without a permission; otherwise they need `email.dev_messages:read`.
   */
  environment?: "development" | "test" | "production";
}

/**
 * The email module's port for recipients: who a user is. Email cannot ask the module that owns
 * users (that module depends on email); `createSdk` fills the port with it.
 */
export interface EmailRecipients {
  /** The address of a user, or undefined when there is no such user. */
  emailOf(userId: string): Promise<string | undefined>;
  /**
   * The user an address belongs to (compared case-insensitively), or undefined: mail addressed to
   * a user's address is that user's mail (their opt-outs apply).
   */
  userIdOf(address: string): Promise<string | undefined>;
}

/** What the email module needs from the modules created before it, and its options. */
export interface EmailDependencies {
  audit: AuditModule;
  options: EmailOptions;
  recipients: EmailRecipients;
}

/** The dispatcher's settings (see dispatcher.ts). */
export interface DispatcherOptions {
  /** Rows sent in one batch request, at most 100 (Resend's limit). Default 100. */
  batchSize?: number;
  /**
   * Batch requests a cycle sends at once: its claim takes up to `batchSize × batchesPerCycle` rows,
   * and its outcomes are written together. Default 5.
   */
  batchesPerCycle?: number;
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
  /**
   * Claim-send-record cycles in flight at once in this process: while some wait for the provider
   * (holding no connection), others claim or record. Default 4.
   */
  concurrency?: number;
  /**
   * Pooled connections the dispatcher holds at once (a claim or an outcome write each; none while a
   * provider request is in flight). Default 2, a quarter of the default pool of 10: the API keeps the
   * rest. With larger pools, raise it here.
   */
  maxConnections?: number;
  /** Shows up in `claimed_by`; default a random id per dispatcher. */
  id?: string;
}

const DEFAULT_CONCURRENCY = 4;
const DEFAULT_BATCHES_PER_CYCLE = 5;
const DEFAULT_MAX_CONNECTIONS = 2;

/** The dispatcher's options with their defaults and bounds applied. */
export function dispatcherSettings(options: DispatcherOptions, maxBatchSize: number) {
  const batchSize = Math.max(1, Math.min(options.batchSize ?? 100, maxBatchSize));
  const leaseMs = options.leaseMs ?? 60_000;
  // A request outliving its lease could race a reclaim: keep it well inside.
  const requestTimeoutMs = Math.min(options.requestTimeoutMs ?? 30_000, Math.floor(leaseMs / 2));
  return {
    batchSize,
    cycleSize: batchSize * Math.max(1, options.batchesPerCycle ?? DEFAULT_BATCHES_PER_CYCLE),
    leaseMs,
    requestTimeoutMs,
    // Deadline plus grace stays within the lease, so an abandoned row is still ours until it expires.
    abandonAfterMs: Math.min(requestTimeoutMs, 1_000),
    pollIntervalMs: options.pollIntervalMs ?? 5_000,
    backoffBaseMs: options.backoffBaseMs ?? 1_000,
    backoffMaxMs: options.backoffMaxMs ?? 3_600_000,
    concurrency: Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY),
    maxConnections: Math.max(1, options.maxConnections ?? DEFAULT_MAX_CONNECTIONS),
  };
}
