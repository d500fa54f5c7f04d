/**
 * Session revocation that keeps the cookie cache. better-auth's cookie cache answers from a signed
 * cookie for its max age, so a signed-out, banned or reset session would keep working that long
 * (ASVS 7.4.1 asks for immediate invalidation). Each instance keeps, per user, when their sessions
 * were last revoked: recorded in `auth.session_revocations` and published with NOTIFY by the unit of
 * work that revoked them (both take effect at its commit), loaded at start-up, applied on every
 * instance. For one cookie-cache age after a revocation, that user's sessions are confirmed against
 * the database instead of the cookie; everyone else's hot path stays query-free.
 */
import { gt, sql } from "drizzle-orm";
import type postgres from "postgres";
import type { Router } from "../../db/router.js";
import { sessionRevocations } from "./schema.js";

const CHANNEL = "sv_session_revocations";

export function createRevocations(router: Router, cookieCacheSeconds: number) {
  const windowMs = cookieCacheSeconds * 1000;
  const revokedAt = new Map<string, number>();
  let listening: Promise<postgres.ListenMeta> | undefined;

  const apply = (userId: string, at: number) => {
    revokedAt.set(userId, Math.max(at, revokedAt.get(userId) ?? 0));
    // Entries older than the window no longer matter.
    if (revokedAt.size > 10_000) {
      const cutoff = Date.now() - windowMs;
      for (const [id, time] of revokedAt) if (time < cutoff) revokedAt.delete(id);
    }
  };

  return {
    /**
     * Starts applying other instances' revocations, then loads the recent ones (listening first, so
     * none falls between the two). Idempotent.
     */
    async listen() {
      if (!listening) {
        listening = router
          .pool(router.databaseOf("auth"))
          .sql.listen(CHANNEL, (payload) => {
            const { userId, at } = JSON.parse(payload) as { userId: string; at: number };
            apply(userId, at);
          });
        await listening;
        const recent = await router
          .db("auth")
          .select()
          .from(sessionRevocations)
          .where(gt(sessionRevocations.revokedAt, new Date(Date.now() - windowMs)));
        for (const row of recent) apply(row.userId, row.revokedAt.getTime());
      }
      return listening;
    },
    /** Revokes the cookie-cached sessions of a user: here at once, everywhere at commit. */
    async revokeUser(userId: string) {
      const at = new Date();
      apply(userId, at.getTime());
      await router
        .db("auth")
        .insert(sessionRevocations)
        .values({ userId, revokedAt: at })
        .onConflictDoUpdate({ target: sessionRevocations.userId, set: { revokedAt: at } });
      await router.db("auth").execute(sql`select pg_notify(${CHANNEL}, ${JSON.stringify({ userId, at: at.getTime() })})`);
    },
    /** Whether a cookie-cached session of this user must be confirmed against the database. */
    mustConfirm(userId: string): boolean {
      return Date.now() - (revokedAt.get(userId) ?? 0) < windowMs;
    },
    async stop() {
      const meta = await listening?.catch(() => undefined);
      listening = undefined;
      await meta?.unlisten().catch(() => undefined);
    },
  };
}

export type Revocations = ReturnType<typeof createRevocations>;
