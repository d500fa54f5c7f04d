/**
 * The rollback fixture: a test's work — SDK calls and `app.request(...)` alike — runs inside one
 * transaction that is always rolled back. Nested units of work become savepoints.
 */
import { inUnitThatNeverCommits } from "../db/outbox.js";
import type { Sdk } from "../sdk.js";

class RollbackSignal extends Error {}

/**
 * Runs `fn` inside a transaction that is rolled back afterwards, and returns what `fn` returned.
 *
 * @example
 * it("assigns a role", () =>
 *   withRollback(sdk, async () => {
 *     const res = await app.request("/api/v1/permissions/roles", { method: "POST", ... });
 *     expect(res.status).toBe(201);
 *   }));
 */
export async function withRollback<T>(sdk: Pick<Sdk, "transaction">, fn: () => Promise<T>): Promise<T> {
  let result: T | undefined;
  try {
    // Cross-database effects (audit on a database of its own) are applied in the unit, not after
    // a commit that never comes: the test reads back every row its work writes. Only inside the
    // unit: what runs after its rollback (onRollback work) commits, so it goes through the outbox.
    await sdk.transaction(() =>
      inUnitThatNeverCommits(async () => {
        result = await fn();
        throw new RollbackSignal();
      }),
    );
  } catch (error) {
    if (!(error instanceof RollbackSignal)) throw error;
  }
  return result as T;
}
