/**
 * Scenario 5 — graceful shutdown under load. The real server (`node --import tsx src/server.ts`)
 * with no DATABASE_URL, so it runs the embedded PostgreSQL in its data directory (a copy of the
 * golden cluster, to skip initdb), serves a steady load of reads, role creations and a sign-in
 * in flight, and gets SIGTERM. Requests in flight finish with 2xx (and what they wrote is
 * committed), new connections are refused, the process tree — its PostgreSQL included — exits
 * within SHUTDOWN_TIMEOUT_MS, with exit code 0.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startEmbeddedPostgres } from "../../src/db/embedded.js";
import { ownerSql, rolePairs } from "./harness/app.js";
import { createTenant, describe as outcome, send, signUpAndIn, type Account } from "./harness/http.js";
import { runLoad, tally, type Sample } from "./harness/load.js";
import {
  Cleanup,
  copyTree,
  exitWithin,
  GOLDEN_DATABASE,
  processesUnder,
  sleep,
  startServerProcess,
  type ServerProcess,
} from "./harness/processes.js";

/** The server's default. */
const SHUTDOWN_TIMEOUT_MS = 10_000;
/** Requests sent this long before the signal are surely in the server's hands: they must finish. */
const IN_FLIGHT_MARGIN_MS = 100;
/**
 * From this long after the signal, the server must no longer accept connections. Between the two
 * margins a request may also meet a connection reset before any byte of an answer: its connection
 * was accepted by the kernel (or by Node, request unread) as the server closed — HTTP's "closed
 * before any response" case, which a client retries (RFC 9112 §9.3.1). Counted and reported.
 */
const REFUSE_AFTER_MS = 500;

const cleanup = new Cleanup();
let dataDir: string;
let server: ServerProcess;
let ada: Account;
let tenant: { id: string; headers: Record<string, string> };

beforeAll(async () => {
  const { root, golden } = inject("faults");
  dataDir = join(root, `shutdown-${Date.now().toString(36)}`);
  await mkdir(dataDir, { mode: 0o755 });
  // The embedded default keeps its cluster in DATA_DIR/postgres: the golden one, already migrated.
  await copyTree(golden, join(dataDir, "postgres"));
  server = await startServerProcess(root, { DATA_DIR: dataDir }, cleanup);
  const origin = `http://localhost:${server.port}`;
  ada = await signUpAndIn(server.url, origin, `ada-${Date.now()}@example.test`);
  tenant = await createTenant(server.url, ada, "Shutdown");
}, 90_000);
afterAll(() => cleanup.run());

describe("SIGTERM to the server under load", () => {
  it("finishes requests in flight, refuses new connections, and exits 0 with its PostgreSQL within the timeout", async () => {
    expect(processesUnder(join(dataDir, "postgres")).length, "the embedded PostgreSQL is not running").toBeGreaterThan(
      0,
    );
    const attempted: string[] = [];
    const load = runLoad(
      cleanup,
      4,
      async (client, i) => {
        if (client < 2)
          return {
            kind: "read",
            answer: await send(`${server.url}/api/v1/permissions/roles?limit=5`, {
              headers: tenant.headers,
              timeoutMs: 15_000,
            }),
          };
        const name = `s-${client}-${i}`;
        attempted.push(name);
        const answer = await send(`${server.url}/api/v1/permissions/roles`, {
          method: "POST",
          headers: tenant.headers,
          body: { name, permissions: ["docs:read"] },
          timeoutMs: 15_000,
        });
        return { kind: "write", answer };
      },
      10,
    );
    await sleep(1_500);
    // A sign-in in flight when the signal comes (its password check takes a while; one, so that it
    // stays well inside the drain's half of SHUTDOWN_TIMEOUT_MS on a busy machine).
    const signIns = Array.from({ length: 1 }, () =>
      send(`${server.url}/api/auth/sign-in/email`, {
        method: "POST",
        headers: { origin: ada.headers.origin! },
        body: { email: ada.email, password: ada.password },
        timeoutMs: 15_000,
      }),
    );
    await sleep(150);
    const signalledAt = performance.now();
    server.child.kill("SIGTERM");
    const exit = await exitWithin(server, SHUTDOWN_TIMEOUT_MS + 2_000);
    const exitedMs = performance.now() - signalledAt;
    // The load goes on until well past REFUSE_AFTER_MS, however fast the server exited: the requests
    // sent then are the ones that must be refused at the door.
    await sleep(Math.max(200, REFUSE_AFTER_MS + 300 - exitedMs));
    const samples: Sample[] = [
      ...(await load.stop()),
      ...(await Promise.all(signIns)).map((answer) => ({ ...answer, kind: "sign-in" })),
    ];
    const leftover = processesUnder(dataDir);

    const at = (s: Sample) => Math.round(s.startedAt - signalledAt);
    const inFlight = samples.filter((s) => s.startedAt <= signalledAt - IN_FLIGHT_MARGIN_MS);
    const late = samples.filter((s) => s.startedAt >= signalledAt + REFUSE_AFTER_MS);
    const summary =
      `${JSON.stringify(tally(samples, outcome))}; exit ${JSON.stringify(exit)} ${Math.round(exitedMs)} ms after SIGTERM; ` +
      `first refusal sent ${Math.min(...samples.filter((s) => s.error === "ECONNREFUSED").map(at))} ms after it; ` +
      `last answer sent ${Math.max(...samples.filter((s) => s.status > 0).map(at))} ms after it; ` +
      `sign-ins answered ${samples
        .filter((s) => s.kind === "sign-in")
        .map((s) => Math.round(s.endedAt - signalledAt))
        .join(" and ")} ms after it; ` +
      `resets around the signal: ${
        samples
          .filter((s) => s.error === "ECONNRESET")
          .map((s) => `${s.kind} sent ${at(s)} ms`)
          .join(", ") || "none"
      }`;
    console.log(`[faults] graceful shutdown: ${summary}`);

    expect(exit, `no exit within ${SHUTDOWN_TIMEOUT_MS + 2_000} ms:\n${server.output().slice(-3000)}`).toEqual({
      code: 0,
      signal: null,
    });
    expect(exitedMs, summary).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
    expect(leftover, "PostgreSQL processes left running").toEqual([]);
    // In flight: every request finished with a success, the sign-in included.
    expect(
      inFlight.filter((s) => s.status < 200 || s.status >= 300).map((s) => `${s.kind} ${outcome(s)} sent ${at(s)} ms`),
      summary,
    ).toEqual([]);
    expect(inFlight.filter((s) => s.kind === "sign-in").map(outcome)).toEqual(["200"]);
    // After the signal: refused at the door, never accepted and then dropped or failed.
    expect(late.length, summary).toBeGreaterThan(0);
    expect(
      late.filter((s) => s.error !== "ECONNREFUSED").map((s) => `${s.kind} ${outcome(s)} sent ${at(s)} ms`),
      summary,
    ).toEqual([]);
    // Around the signal: a success, a refusal, or a reset before any answer; never an error status.
    const acceptable = (s: Sample) =>
      (s.status >= 200 && s.status < 300) || s.error === "ECONNREFUSED" || (s.error === "ECONNRESET" && s.body === "");
    expect(
      samples.filter((s) => !acceptable(s)).map((s) => `${s.kind} ${outcome(s)} sent ${at(s)} ms`),
      summary,
    ).toEqual([]);

    // What the answered writes wrote is there, each role with its audit row (PostgreSQL restarted to look).
    const cluster = await startEmbeddedPostgres({ dataDir: join(dataDir, "postgres"), database: GOLDEN_DATABASE });
    cleanup.defer("the restarted embedded PostgreSQL", () => cluster.stop({ timeoutMs: 5_000 }));
    const owner = ownerSql(cluster.url, cleanup);
    const pairs = await rolePairs(owner, tenant.id, "s-");
    expect(pairs.partial).toEqual([]);
    const answered = samples.filter((s) => s.kind === "write" && s.status === 201).length;
    expect(pairs.committed.size).toBeGreaterThanOrEqual(answered);
    expect(pairs.committed.size).toBeLessThanOrEqual(attempted.length);
  });
});
