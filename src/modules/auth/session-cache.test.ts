import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { useTestSdk } from "../../../test/support.js";
import { createModuleContext } from "../../db/module-context.js";
import { withRollback } from "../../testing/rollback.js";
import { authModule } from "./index.js";
import { createRevocations } from "./revocations.js";
import { sessionCookieName } from "./better-auth.js";
import { cookieValue, createSessionCache } from "./session-cache.js";
import type { ResolvedSession } from "./sessions.js";

const { sdk } = useTestSdk();
/** A feed of its own needs the auth module's context, as the SDK gives it. */
const authContext = () => createModuleContext(sdk.router, authModule, sdk.logger);

const session = (userId: string, expiresInMs: number): ResolvedSession => ({
  user: { id: userId, email: "a@example.test", name: "A", emailVerified: true },
  session: { id: randomUUID(), expiresAt: new Date(Date.now() + expiresInMs) },
});

/** A session feed that hears other instances (the cache keeps answers only then). */
const feeds: ReturnType<typeof createRevocations>[] = [];
async function listeningFeed() {
  const feed = createRevocations(authContext(), 300);
  await feed.listen();
  feeds.push(feed);
  return feed;
}
afterAll(() => Promise.all(feeds.map((f) => f.stop())));

describe("session cache", () => {
  const sessionCookie = "sv.session_token";

  it("keeps nothing while it cannot hear other instances' sign-outs", () => {
    const cache = createSessionCache(createRevocations(authContext(), 300), { sessionCookie });
    cache.set(new Headers({ cookie: "sv.session_token=abc" }), session(randomUUID(), 60_000));
    expect(cache.get(new Headers({ cookie: "sv.session_token=abc" }))).toBeUndefined();
  });

  it("forgets a user whose sessions changed (active tenant, impersonation), here and on every instance", () =>
    withRollback(sdk, async () => {
      const feed = await listeningFeed();
      const cache = createSessionCache(feed, { sessionCookie });
      const [user] = await sdk.auth
        .createUser({ email: `d-${randomUUID()}@example.test`, password: "correct horse battery", name: "D" })
        .then((u) => [u]);
      const other = session(randomUUID(), 60_000);
      cache.set(new Headers({ cookie: "sv.session_token=mine" }), session(user!.id, 60_000));
      cache.set(new Headers({ cookie: "sv.session_token=theirs" }), other);
      await feed.sessionsChanged(user!.id);
      expect(cache.get(new Headers({ cookie: "sv.session_token=mine" }))).toBeUndefined();
      expect(cache.get(new Headers({ cookie: "sv.session_token=theirs" }))).toBe(other);
    }));

  it("answers only the exact credential it was given", async () => {
    const cache = createSessionCache(await listeningFeed(), { sessionCookie });
    const data = session(randomUUID(), 60_000);
    cache.set(new Headers({ cookie: "sv.session_token=abc; sv.session_data=xyz" }), data);
    expect(cache.get(new Headers({ cookie: "sv.session_token=abc; sv.session_data=xyz" }))).toBe(data);
    // The signed cookie-cache copy only repeats the session the token names.
    expect(cache.get(new Headers({ cookie: "theme=dark; sv.session_token=abc" }))).toBe(data);
    expect(cache.get(new Headers({ cookie: "sv.session_token=abd; sv.session_data=xyz" }))).toBeUndefined();
    expect(cache.get(new Headers({ cookie: "xsv.session_token=abc" }))).toBeUndefined();
    expect(cache.get(new Headers({ cookie: "sv.session_token=abc; sv.session_token=other" }))).toBeUndefined();
    expect(cache.get(new Headers({ cookie: "sv.session_token=abc", authorization: "Bearer abc" }))).toBeUndefined();
    expect(cache.get(new Headers({ authorization: "Bearer abc" }))).toBeUndefined();
    expect(cache.get(new Headers({ cookie: "sv.session_data=xyz" }))).toBeUndefined();
    expect(cache.get(new Headers())).toBeUndefined();
    // The request middleware's lookup from the two header values answers the same.
    expect(cache.lookup(undefined, "theme=dark; sv.session_token=abc")).toBe(data);
    expect(cache.lookup("Bearer abc", "sv.session_token=abc")).toBeUndefined();
    expect(cache.lookup(undefined, undefined)).toBeUndefined();
    // A bearer credential has an entry of its own, never answered for a cookie.
    const bearer = session(randomUUID(), 60_000);
    cache.set(new Headers({ authorization: "Bearer abc" }), bearer);
    expect(cache.lookup("Bearer abc", undefined)).toBe(bearer);
    expect(cache.lookup(undefined, "sv.session_token=abc")).toBe(data);
  });

  it("reads one cookie out of a Cookie header, refusing an ambiguous one", () => {
    expect(cookieValue("a=1; sv.session_token=t.sig; b=2", sessionCookie)).toBe("t.sig");
    expect(cookieValue("sv.session_token=t.sig", sessionCookie)).toBe("t.sig");
    expect(cookieValue("a=sv.session_token=x", sessionCookie)).toBeUndefined();
    expect(cookieValue("sv.session_token=1; sv.session_token=2", sessionCookie)).toBeUndefined();
    expect(cookieValue("", sessionCookie)).toBeUndefined();
  });

  it("keys on the cookie better-auth really sets", async () => {
    const context = await sdk.auth.instance.$context;
    expect(context.authCookies.sessionToken.name).toBe(sessionCookieName(false));
  });

  it("never answers past the session's expiry or its time to live", async () => {
    const feed = await listeningFeed();
    const cache = createSessionCache(feed, { sessionCookie, ttlMs: 60_000 });
    cache.set(new Headers({ cookie: "sv.session_token=soon" }), session(randomUUID(), 20));
    const shortLived = createSessionCache(feed, { sessionCookie, ttlMs: 20 });
    shortLived.set(new Headers({ cookie: "sv.session_token=ttl" }), session(randomUUID(), 60_000));
    await new Promise((r) => setTimeout(r, 40));
    expect(cache.get(new Headers({ cookie: "sv.session_token=soon" }))).toBeUndefined();
    expect(shortLived.get(new Headers({ cookie: "sv.session_token=ttl" }))).toBeUndefined();
  });

  it("stops answering for a user as soon as their sessions are revoked", () =>
    withRollback(sdk, async () => {
      const revocations = await listeningFeed();
      const cache = createSessionCache(revocations, { sessionCookie });
      const [user] = await sdk.auth
        .createUser({ email: `c-${randomUUID()}@example.test`, password: "correct horse battery", name: "C" })
        .then((u) => [u]);
      cache.set(new Headers({ cookie: "sv.session_token=mine" }), session(user!.id, 60_000));
      expect(cache.get(new Headers({ cookie: "sv.session_token=mine" }))).toBeDefined();
      await revocations.revokeUser(user!.id);
      expect(cache.get(new Headers({ cookie: "sv.session_token=mine" }))).toBeUndefined();
    }));
});
