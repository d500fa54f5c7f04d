/**
 * The session feed: what every instance must learn within a second about a user's sessions.
 *
 * better-auth's cookie cache answers from a signed cookie for its max age, so a signed-out, banned or
 * reset session would keep working that long (ASVS 7.4.1 asks for immediate invalidation), and the
 * in-process caches (resolved sessions, memberships) would keep answering too. Events are recorded by
 * the unit of work that causes them and published with NOTIFY (both take effect at its commit), and
 * applied on every instance:
 * - `revoked` (sign-out, ban, password reset, session revocation, leaving a tenant): for one
 *   cookie-cache age that user's sessions are confirmed against the database instead of the cookie;
 *   kept in `auth.session_revocations` and loaded at start-up, so a new instance knows them too;
 * - `changed` (active tenant set, impersonation ended, profile updated): cached resolutions of that
 *   user's sessions are dropped, and their cookie-cache copies are confirmed against the database
 *   for one cookie-cache age, so the next request — on any route — sees the change;
 * - `membership` (added to or removed from a tenant): cached memberships of that user are dropped.
 * Everyone else's hot path stays query-free.
 */
import { gt, sql } from "drizzle-orm";
import type { ModuleContext } from "../../db/module.js";
import { sessionRevocations } from "./schema.js";

const CHANNEL = "sv_session_revocations";

export type SessionEventKind = "revoked" | "changed" | "membership";

export interface SessionEvent {
  kind: SessionEventKind;
  userId: string;
}

/** The feed's LISTEN, while it runs. */
export interface Listening {
  unlisten(): Promise<void>;
}

/**
 * The users whose sessions ended (signed out, banned, reset, revoked) within the last `seconds`.
 */
export async function revokedWithin(
  context: ModuleContext,
  seconds: number,
): Promise<{ userId: string; revokedAt: Date }[]> {
  return context
    .db()
    .select({ userId: sessionRevocations.userId, revokedAt: sessionRevocations.revokedAt })
    .from(sessionRevocations)
    .where(gt(sessionRevocations.revokedAt, new Date(Date.now() - seconds * 1000)));
}

export function createRevocations(context: ModuleContext, cookieCacheSeconds: number) {
  const windowMs = cookieCacheSeconds * 1000;
  const revokedAt = new Map<string, number>();
  const subscribers = new Set<(event: SessionEvent) => void>();
  let listening: Promise<Listening> | undefined;
  let live = false;

  const apply = (event: SessionEvent, at: number) => {
    // Either way the signed cookie-cache copies of the user's sessions are out of date: they are
    // confirmed against the database for one cookie-cache age (here and in better-auth's routes).
    if (event.kind === "revoked" || event.kind === "changed") {
      revokedAt.set(event.userId, Math.max(at, revokedAt.get(event.userId) ?? 0));
      // Entries older than the window no longer matter.
      if (revokedAt.size > 10_000) {
        const cutoff = Date.now() - windowMs;
        for (const [id, time] of revokedAt) if (time < cutoff) revokedAt.delete(id);
      }
    }
    for (const subscriber of subscribers) subscriber(event);
  };

  const publish = async (event: SessionEvent, at: Date) => {
    await context.db().execute(sql`select pg_notify(${CHANNEL}, ${JSON.stringify({ ...event, at: at.getTime() })})`);
  };

  return {
    /**
     * Starts applying other instances' events, then loads the recent revocations (listening first,
     * so none falls between the two). Idempotent.
     */
    async listen() {
      if (!listening) {
        listening = context
          .listen(
            CHANNEL,
            (payload) => {
              const {
                kind = "revoked",
                userId,
                at,
              } = JSON.parse(payload) as { kind?: SessionEventKind; userId: string; at: number };
              apply({ kind, userId }, at);
            },
            () => {
              // (Re)connected: events sent meanwhile are lost, so every cached answer goes.
              live = true;
              for (const subscriber of subscribers) subscriber({ kind: "changed", userId: "*" });
            },
          )
          .then(async ({ unlisten, partial }) => {
            // The session rows live in one database: a feed that does not hear it hears nothing.
            if (!partial) return { unlisten };
            await unlisten();
            throw new Error(`could not LISTEN on ${CHANNEL}: the session feed's database did not answer`);
          });
        listening.catch(() => {
          live = false;
          listening = undefined;
        });
        await listening;
        const recent = await context
          .db()
          .select()
          .from(sessionRevocations)
          .where(gt(sessionRevocations.revokedAt, new Date(Date.now() - windowMs)));
        for (const row of recent) apply({ kind: "revoked", userId: row.userId }, row.revokedAt.getTime());
      }
      return listening;
    },
    /**
     * Whether events from other instances arrive (caches that must not outlive a change on another
     * instance only keep answers while this holds).
     */
    get live() {
      return live;
    },
    /** Calls `fn` with every event, this instance's and the others'; `userId` "*" means everyone. */
    subscribe(fn: (event: SessionEvent) => void): void {
      subscribers.add(fn);
    },
    /** Revokes the cookie-cached sessions of a user: here at once, everywhere at commit. */
    async revokeUser(userId: string) {
      const at = new Date();
      apply({ kind: "revoked", userId }, at.getTime());
      await context
        .db()
        .insert(sessionRevocations)
        .values({ userId, revokedAt: at })
        .onConflictDoUpdate({ target: sessionRevocations.userId, set: { revokedAt: at } });
      await publish({ kind: "revoked", userId }, at);
    },
    /** A user's sessions changed (active tenant, impersonation, profile): cached resolutions go. */
    async sessionsChanged(userId: string) {
      const at = new Date();
      apply({ kind: "changed", userId }, at.getTime());
      await publish({ kind: "changed", userId }, at);
    },
    /** A user joined or left a tenant: cached memberships go. */
    async membershipChanged(userId: string) {
      const at = new Date();
      apply({ kind: "membership", userId }, at.getTime());
      await publish({ kind: "membership", userId }, at);
    },
    /** Whether a cookie-cached session of this user must be confirmed against the database. */
    mustConfirm(userId: string): boolean {
      return Date.now() - (revokedAt.get(userId) ?? 0) < windowMs;
    },
    async stop() {
      const handle = await listening?.catch(() => undefined);
      listening = undefined;
      live = false;
      await handle?.unlisten().catch(() => undefined);
    },
  };
}

export type Revocations = ReturnType<typeof createRevocations>;
