/**
 * Scenario 4 — pool exhaustion. With a pool of N (5), N requests hold every connection in their
 * units of work (pg_sleep, 7 s: longer than the acquire timeout); request N+1 — a real read and a
 * real mutation — waits at most the acquire timeout (5 s, the default) and gets 503 with
 * Retry-After, writing nothing. The holders then finish (201, row and audit row committed) and the
 * pool serves at once again, with no connection beyond its size.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appConnections, POOL_MAX, type RunningApp } from "./harness/app.js";
import { faultRequests, startFaultApp } from "./harness/fault-app.js";
import { writtenPairs } from "./harness/fault-routes.js";
import { describe as outcome, isRetryable503, jsonOf } from "./harness/http.js";
import { waitFor } from "./harness/load.js";
import { Cleanup } from "./harness/processes.js";
import type postgres from "postgres";

/** The pool's acquire timeout (topology default). */
const ACQUIRE_TIMEOUT_MS = 5_000;
/** Scheduling slack on a shared two-core machine. */
const SLACK_MS = 1_000;

const cleanup = new Cleanup();
let app: RunningApp;
let owner: postgres.Sql;
let tenantHeaders: Record<string, string>;

beforeAll(async () => {
  ({ app, owner, tenantHeaders } = await startFaultApp("pool", cleanup));
});
afterAll(() => cleanup.run());

const { write, readRoles, createRole } = faultRequests(() => ({ app, tenantHeaders }));

describe("a pool of 5 held by 5 long requests", () => {
  it("makes request 6 wait at most the acquire timeout, then answers 503 with Retry-After; then serves again", async () => {
    // Warm: the session, membership and permission caches hold what the extra requests need.
    expect(outcome(await readRoles())).toBe("200");
    expect(outcome(await write("warm"))).toBe("201");

    const holders = Array.from({ length: POOL_MAX }, (_, i) => write(`hold-${i}`, [3.5, 3.5]));
    const held = await waitFor(async () => {
      const [row] = await owner<{ n: number }[]>`
        select count(*)::int as n from pg_stat_activity where application_name = 'sv-sdk' and query like '%fault:hold-%' and state = 'active'`;
      return row!.n === POOL_MAX;
    }, 5_000);
    expect(held, "the 5 holders did not all reach pg_sleep within 5 s").toBeDefined();

    const [extraRead, extraWrite, extraRole] = await Promise.all([
      readRoles(),
      write("extra"),
      createRole("extra-role"),
    ]);
    for (const [name, answer] of [
      ["read", extraRead],
      ["fault write", extraWrite],
      ["role creation", extraRole],
    ] as const) {
      expect(isRetryable503(answer), `${name}: ${outcome(answer)} ${answer.body}`).toBe(true);
      expect(jsonOf<{ code: string }>(answer)?.code, name).toMatch(/^(DATABASE_BUSY|DEADLINE_EXCEEDED)$/);
      expect(answer.ms, `${name} waited ${Math.round(answer.ms)} ms`).toBeLessThan(ACQUIRE_TIMEOUT_MS + SLACK_MS);
    }

    const finished = await Promise.all(holders);
    expect(finished.map(outcome)).toEqual(Array(POOL_MAX).fill("201"));

    // Each holder's row and audit row committed; the refused requests wrote nothing.
    const pairs = await writtenPairs(owner, "");
    expect(pairs.partial).toEqual([]);
    expect([...pairs.committed].sort()).toEqual(["hold-0", "hold-1", "hold-2", "hold-3", "hold-4", "warm"]);
    const [role] = await owner<
      { n: number }[]
    >`select count(*)::int as n from permissions.roles where name = 'extra-role'`;
    expect(role!.n).toBe(0);

    // Whole again: the pool's size in parallel, each at once.
    const after = await Promise.all(Array.from({ length: POOL_MAX }, (_, i) => write(`after-${i}`)));
    expect(after.map(outcome)).toEqual(Array(POOL_MAX).fill("201"));
    expect(Math.max(...after.map((a) => a.ms))).toBeLessThan(2_000);
    expect(app.sdk.router.pool("main").gate.active).toBe(0);
    expect((await appConnections(owner)).pool).toBeLessThanOrEqual(POOL_MAX);
    console.log(
      `[faults] pool exhaustion: request 6 answered 503 after ${[extraRead, extraWrite, extraRole].map((a) => Math.round(a.ms)).join(" / ")} ms ` +
        `(read / write / role; acquire timeout ${ACQUIRE_TIMEOUT_MS} ms)`,
    );
  });
});
