/**
 * The health probe: a database that never answers is called down after the probe's timeout and up
 * when it answers again (a real PostgreSQL); a process too busy to read an answer in time — its event
 * loop blocked past the timeout while the answer sat on the socket — does not call the database down.
 * That answer comes from a responder in a process of its own (a one-line echo server), so it is on the
 * socket within a millisecond whatever the suite's database is doing meanwhile.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { connect } from "node:net";
import postgres from "postgres";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { createDatabaseHealth } from "./health.js";

let sql: postgres.Sql;
let echo: ChildProcess;
let echoPort: number;

beforeAll(async () => {
  sql = postgres(inject("svTestDatabase").url, { max: 1, onnotice: () => {} });
  await sql`select 1`;
  echo = spawn(
    process.execPath,
    [
      "-e",
      "const s = require('node:net').createServer((c) => c.pipe(c)); s.listen(0, '127.0.0.1', () => console.log(s.address().port));",
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  echoPort = await new Promise<number>((resolve) => echo.stdout!.once("data", (d: Buffer) => resolve(Number(d))));
});
afterAll(async () => {
  echo?.kill();
  await sql?.end({ timeout: 5 });
});

/** A probe client on one connection to the echo server: a ping is one round trip. */
async function echoClient() {
  const socket = connect(echoPort, "127.0.0.1");
  await new Promise((resolve) => socket.once("connect", resolve));
  return {
    ping: () =>
      new Promise((resolve) => {
        socket.once("data", resolve);
        socket.write("ping");
      }),
    end: async () => void socket.destroy(),
  };
}

/** Blocks this process's event loop for `ms`, as a CPU-bound step would. */
function busy(ms: number) {
  const until = Date.now() + ms;
  while (Date.now() < until);
}

it("keeps a database up whose answer arrived while this process was too busy to read it", async () => {
  const changes: string[] = [];
  const client = await echoClient();
  const health = createDatabaseHealth({
    name: "main",
    probeTimeoutMs: 200,
    probeClient: () => client,
    onChange: (state) => changes.push(state),
  });
  try {
    health.suspect(); // the probe's query goes out now
    busy(600); // its answer arrives meanwhile; the probe's timer expires unread
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(health.status().state).toBe("up");
    expect(changes).toEqual([]);
  } finally {
    await health.stop();
    await client.end();
  }
});

it("calls a database that does not answer down after the probe's timeout, and up when it answers", async () => {
  let answering = false;
  const health = createDatabaseHealth({
    name: "frozen",
    probeTimeoutMs: 150,
    retryEveryMs: 100,
    probeClient: () => ({
      ping: () => (answering ? sql`select 1` : new Promise(() => undefined)),
      end: async () => undefined,
    }),
  });
  try {
    const started = Date.now();
    health.suspect();
    while (health.status().state === "up" && Date.now() - started < 2_000) await new Promise((r) => setTimeout(r, 20));
    expect(health.status()).toMatchObject({ state: "down", reason: "no_answer" });
    expect(() => health.check()).toThrow(expect.objectContaining({ code: "DATABASE_UNAVAILABLE" }));
    answering = true;
    while (health.status().state === "down" && Date.now() - started < 4_000)
      await new Promise((r) => setTimeout(r, 20));
    expect(health.status().state).toBe("up");
  } finally {
    await health.stop();
  }
});

it("keeps a database up that answers work while its probe waits past the timeout (slow, not frozen)", async () => {
  const verdict = async (answers: boolean) => {
    const changes: string[] = [];
    const health = createDatabaseHealth({
      name: "slow",
      probeTimeoutMs: 150,
      probeClient: () => ({ ping: () => new Promise(() => undefined), end: async () => undefined }),
      onChange: (state) => changes.push(state),
    });
    try {
      health.suspect(); // the probe's ping never answers
      // Meanwhile a query on the database is answered (a pool turn, `answers` false, proves nothing).
      await health.guard(new Promise((resolve) => setTimeout(resolve, 50)), answers);
      await new Promise((resolve) => setTimeout(resolve, 300));
      return { state: health.status().state, changes };
    } finally {
      await health.stop();
    }
  };
  expect(await verdict(true)).toEqual({ state: "up", changes: [] });
  expect(await verdict(false)).toEqual({ state: "down", changes: ["down"] });
});
