/**
 * Rate-limit storage for better-auth, in `auth.rate_limits`. It writes on the pool, outside the
 * request's unit of work: a refused sign-in rolls its unit back, and its attempt must still count.
 * One upsert checks and counts at once (a fixed window), so instances racing on one client cannot
 * all slip under the limit.
 */
import { sql } from "drizzle-orm";
import type { Router } from "../../db/router.js";

export function createRateLimitStorage(router: Router) {
  const db = router.pool(router.databaseOf("auth")).db;
  return {
    async consume(key: string, rule: { window: number; max: number }) {
      const now = Date.now();
      const windowMs = rule.window * 1000;
      const [row] = await db.execute<{ count: number; window_start: string }>(sql`
        insert into auth.rate_limits (key, count, last_request) values (${key}, 1, ${now})
        on conflict (key) do update set
          count = case when auth.rate_limits.last_request <= ${now - windowMs} then 1 else auth.rate_limits.count + 1 end,
          last_request = case when auth.rate_limits.last_request <= ${now - windowMs} then ${now} else auth.rate_limits.last_request end
        returning count, last_request::text as window_start`);
      const allowed = row!.count <= rule.max;
      const retryAfter = allowed ? null : Math.max(1, Math.ceil((Number(row!.window_start) + windowMs - now) / 1000));
      return { allowed, retryAfter };
    },
  };
}
