/**
 * Slots of the shared AsyncLocalStorage behave like AsyncLocalStorage instances of their own, and
 * better-auth's storages are slots once an SDK exists.
 */
import { describe, expect, it } from "vitest";
import { useTestSdk } from "../../test/support.js";
import { betterAuthStorageShared } from "../modules/auth/shared-storage.js";
import { ContextSlot } from "./context-storage.js";

describe("ContextSlot", () => {
  it("keeps each slot's store apart, through awaits, and restores it after run", async () => {
    const a = new ContextSlot<string>("a");
    const b = new ContextSlot<number>("b");
    expect(a.getStore()).toBeUndefined();
    await a.run("outer", async () => {
      await b.run(1, async () => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        expect(a.getStore()).toBe("outer");
        expect(b.getStore()).toBe(1);
        await a.run("inner", async () => {
          await Promise.resolve();
          expect(a.getStore()).toBe("inner");
          expect(b.getStore()).toBe(1);
        });
        expect(a.getStore()).toBe("outer");
      });
      expect(b.getStore()).toBeUndefined();
    });
    expect(a.getStore()).toBeUndefined();
  });

  it("keeps concurrent runs apart", async () => {
    const slot = new ContextSlot<number>("concurrent");
    const seen = await Promise.all(
      [1, 2, 3].map((n) =>
        slot.run(n, async () => {
          await new Promise((resolve) => setTimeout(resolve, 5 - n));
          return slot.getStore();
        }),
      ),
    );
    expect(seen).toEqual([1, 2, 3]);
  });
});

describe("better-auth's storages", () => {
  const { sdk } = useTestSdk();

  it("are slots of the shared storage once an SDK exists, and sign-in still works on them", async () => {
    expect(betterAuthStorageShared()).toBe(true);
    const email = `slots-${crypto.randomUUID()}@example.test`;
    await sdk.auth.createUser({ email, password: "correct horse battery staple", name: "S", emailVerified: true });
    const signIn = await sdk.auth.api.signInEmail({ body: { email, password: "correct horse battery staple" } });
    expect(signIn.user.email).toBe(email);
    expect(betterAuthStorageShared()).toBe(true);
  });
});
