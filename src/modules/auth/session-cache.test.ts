import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { useTestSdk } from "../../../test/support.js";
import { withRollback } from "../../testing/rollback.js";
import type { ResolvedSession } from "./middleware.js";
import { createRevocations } from "./revocations.js";
import { createSessionCache } from "./session-cache.js";

const { sdk } = useTestSdk();

const session = (userId: string, expiresInMs: number): ResolvedSession => ({
  user: { id: userId, email: "a@example.test", name: "A", emailVerified: true },
  session: { id: randomUUID(), expiresAt: new Date(Date.now() + expiresInMs) },
});

describe("session cache", () => {
  it("answers only the exact credential it was given", () => {
    const cache = createSessionCache(createRevocations(sdk.router, 300));
    const data = session(randomUUID(), 60_000);
    cache.set(new Headers({ cookie: "sv.session_token=abc" }), data);
    expect(cache.get(new Headers({ cookie: "sv.session_token=abc" }))).toBe(data);
    expect(cache.get(new Headers({ cookie: "sv.session_token=abd" }))).toBeUndefined();
    expect(cache.get(new Headers({ authorization: "Bearer abc" }))).toBeUndefined();
    expect(cache.get(new Headers())).toBeUndefined();
  });

  it("never answers past the session's expiry or its time to live", async () => {
    const cache = createSessionCache(createRevocations(sdk.router, 300), { ttlMs: 60_000 });
    cache.set(new Headers({ cookie: "soon" }), session(randomUUID(), 20));
    const shortLived = createSessionCache(createRevocations(sdk.router, 300), { ttlMs: 20 });
    shortLived.set(new Headers({ cookie: "ttl" }), session(randomUUID(), 60_000));
    await new Promise((r) => setTimeout(r, 40));
    expect(cache.get(new Headers({ cookie: "soon" }))).toBeUndefined();
    expect(shortLived.get(new Headers({ cookie: "ttl" }))).toBeUndefined();
  });

  it("stops answering for a user as soon as their sessions are revoked", () =>
    withRollback(sdk, async () => {
      const revocations = createRevocations(sdk.router, 300);
      const cache = createSessionCache(revocations);
      const [user] = await sdk.auth.createUser({ email: `c-${randomUUID()}@example.test`, password: "correct horse battery", name: "C" }).then((u) => [u]);
      cache.set(new Headers({ cookie: "mine" }), session(user!.id, 60_000));
      expect(cache.get(new Headers({ cookie: "mine" }))).toBeDefined();
      await revocations.revokeUser(user!.id);
      expect(cache.get(new Headers({ cookie: "mine" }))).toBeUndefined();
    }));
});
