/**
 * Rate limits for `/api/auth/*`, in front of the request's unit of work.
 *
 * better-auth's own limiter runs inside its handler, i.e. inside the request's transaction: with
 * database storage it asked the pool for a second connection while the request held one, and 20
 * concurrent sign-ups wedged a pool of 10 for good. Here the limit is decided before the unit of work
 * opens, so its single statement holds nothing else:
 * - the routes that guard credentials (sign-in, sign-up, reset, two-factor) are counted in
 *   `auth.rate_limits` by one atomic upsert, shared by every instance (a fixed window; a refused
 *   sign-in's attempt still counts, since it is not part of the refused request's transaction);
 * - every other auth route (get-session above all: every client calls it on page load) is counted
 *   in memory per instance, so a cached session costs no statement at all.
 */
import { sql } from "drizzle-orm";
import type { ModuleContext } from "../../db/module.js";
import { currentContext } from "../../db/unit-of-work.js";
import { AuthErrors } from "./errors.js";

export interface RateLimitRule {
  /** Seconds. */
  window: number;
  max: number;
}

/** Limits per client address on the routes that guard credentials (paths below /api/auth). */
export const CREDENTIAL_RULES: Readonly<Record<string, RateLimitRule>> = {
  "/sign-in/email": { window: 60, max: 10 },
  "/sign-up/email": { window: 60, max: 10 },
  "/request-password-reset": { window: 60, max: 5 },
  "/reset-password": { window: 60, max: 10 },
  "/send-verification-email": { window: 60, max: 5 },
  "/change-password": { window: 60, max: 10 },
  "/two-factor/verify-totp": { window: 60, max: 10 },
  "/two-factor/verify-backup-code": { window: 60, max: 10 },
  "/two-factor/verify-otp": { window: 60, max: 10 },
};

/** Every other auth route, per client address and instance. */
export const DEFAULT_RULE: RateLimitRule = { window: 60, max: 600 };

export interface AuthRateLimitOptions {
  context: ModuleContext;
  /** Off only where a test says so in its name; on by default. */
  enabled: boolean;
}

/** A fixed-window counter in `auth.rate_limits`: one upsert counts and answers. */
async function consumeStored(context: ModuleContext, key: string, rule: RateLimitRule) {
  const now = Date.now();
  const windowMs = rule.window * 1000;
  const [row] = await context.db().execute<{ count: number; window_start: string }>(sql`
    insert into auth.rate_limits (key, count, last_request) values (${key}, 1, ${now})
    on conflict (key) do update set
      count = case when auth.rate_limits.last_request <= ${now - windowMs} then 1 else auth.rate_limits.count + 1 end,
      last_request = case when auth.rate_limits.last_request <= ${now - windowMs} then ${now} else auth.rate_limits.last_request end
    returning count, last_request::text as window_start`);
  return { allowed: row!.count <= rule.max, resetAt: Number(row!.window_start) + windowMs };
}

/** Per-instance fixed windows in memory, swept as they expire. */
function createMemoryWindows(rule: RateLimitRule) {
  const windows = new Map<string, { count: number; resetAt: number }>();
  let sweepAt = 0;
  return (key: string, now: number) => {
    if (now >= sweepAt) {
      for (const [k, w] of windows) if (w.resetAt <= now) windows.delete(k);
      sweepAt = now + rule.window * 1000;
    }
    let window = windows.get(key);
    if (!window || window.resetAt <= now) windows.set(key, (window = { count: 0, resetAt: now + rule.window * 1000 }));
    window.count++;
    return { allowed: window.count <= rule.max, resetAt: window.resetAt };
  };
}

/** Throws RATE_LIMITED, with the seconds until the window ends, over the limit. */
function refuseOver({ allowed, resetAt }: { allowed: boolean; resetAt: number }, now: number): void {
  if (!allowed) throw AuthErrors.RATE_LIMITED({ retryAfter: Math.max(1, Math.ceil((resetAt - now) / 1000)) });
}

/**
 * The limiter of `/api/auth/*`: `limit(path)` counts one attempt of the request's client on the
 * route (a path below /api/auth) and throws RATE_LIMITED over the limit. Called before the unit of
 * work opens. Routes counted in memory answer synchronously (no promise: get-session is hot).
 */
export function createAuthRateLimit(options: AuthRateLimitOptions) {
  const { context, enabled } = options;
  const memory = createMemoryWindows(DEFAULT_RULE);
  return {
    limit(path: string): Promise<void> | undefined {
      if (!enabled) return undefined;
      const client = currentContext().ip ?? "unknown";
      const rule = CREDENTIAL_RULES[path];
      const now = Date.now();
      if (!rule) {
        refuseOver(memory(client, now), now);
        return undefined;
      }
      return consumeStored(context, `${client}|${path}`, rule).then((answer) => refuseOver(answer, now));
    },
  };
}

export type AuthRateLimit = ReturnType<typeof createAuthRateLimit>;
