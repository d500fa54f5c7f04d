/**
 * Scenario 6 — kill -9 between commit and email dispatch. The real server sends through Resend's
 * API, pointed (RESEND_BASE_URL, through a tap that notes each request's arrival) at the local
 * stand-in (fake-resend.ts, in this process), which counts deliveries and Idempotency-Keys and
 * answers a key it has seen from its idempotency cache, as Resend does. A sign-up commits its verification mail to the outbox; the server is SIGKILLed:
 *
 * - before the dispatcher sends (it is off for that run: EMAIL_DISPATCHER=off): after a restart with
 *   the dispatcher on, the mail is sent exactly once;
 * - while the provider request is in flight (the stand-in holds it, then accepts it): after a
 *   restart the row is claimed again once its lease runs out — the test ages the lease instead of
 *   waiting the 60 s — and re-sent under the same Idempotency-Key; the stand-in answers from its
 *   cache, so one message is delivered and the row records that message's id.
 */
import type postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startFakeResend, type FakeResend } from "../../src/modules/email/testing/fake-resend.js";
import { ownerSql } from "./harness/app.js";
import { describe as outcome, send } from "./harness/http.js";
import { startProviderTap, type ProviderTap } from "./harness/provider-tap.js";
import { waitFor } from "./harness/load.js";
import {
  Cleanup,
  exitWithin,
  sleep,
  startCluster,
  startServerProcess,
  type ServerProcess,
} from "./harness/processes.js";

const cleanup = new Cleanup();
let root: string;
let env: Record<string, string>;
let owner: postgres.Sql;
let fake: FakeResend;
let tap: ProviderTap;
/** A server left running, dispatcher on, by the first scenario: the second starts from it (one start fewer). */
let dispatching: ServerProcess | undefined;

interface OutboxRow {
  id: string;
  status: string;
  attempts: number;
  provider_message_id: string | null;
}

beforeAll(async () => {
  const faults = inject("faults");
  root = faults.root;
  const cluster = await startCluster(root, faults.golden, "mail", cleanup);
  owner = ownerSql(cluster.url, cleanup);
  fake = await startFakeResend();
  cleanup.defer("fake Resend", () => fake.close());
  tap = await startProviderTap(fake.url, cleanup);
  env = {
    DATABASE_URL: cluster.url,
    DATA_DIR: `${root}/mail-server-data`,
    RESEND_API_KEY: "re_faults_test",
    RESEND_BASE_URL: tap.url,
  };
});
afterAll(() => cleanup.run());

const start = (overrides: Record<string, string> = {}) => startServerProcess(root, { ...env, ...overrides }, cleanup);

async function kill9(server: ServerProcess): Promise<void> {
  server.child.kill("SIGKILL");
  expect(await exitWithin(server, 5_000)).toEqual({ code: null, signal: "SIGKILL" });
}

async function stop(server: ServerProcess): Promise<void> {
  server.child.kill("SIGTERM");
  expect(await exitWithin(server, 12_000)).toEqual({ code: 0, signal: null });
}

/** Signs a new user up: one unit of work that commits the user and the verification mail's outbox row. */
async function signUp(server: ServerProcess, email: string): Promise<OutboxRow> {
  const answer = await send(`${server.url}/api/auth/sign-up/email`, {
    method: "POST",
    headers: { origin: `http://localhost:${server.port}` },
    body: { email, password: "correct horse battery staple", name: "Mail" },
  });
  expect(outcome(answer), answer.body).toBe("200");
  const rows = await outbox(email);
  expect(rows.length, `outbox rows for ${email}`).toBe(1);
  return rows[0]!;
}

const outbox = (email: string) =>
  owner<
    OutboxRow[]
  >`select id::text as id, status, attempts, provider_message_id from email.email_sends where to_address = ${email}`;

const deliveredFor = (sendId: string) => fake.delivered.filter((d) => d.sendId === sendId);
const requestsFor = (sendId: string) => fake.requests.filter((r) => r.idempotencyKey === sendId);

describe("kill -9 between commit and email dispatch", () => {
  it("sends the committed mail exactly once after a restart when the kill came before the send", async () => {
    const first = await start({ EMAIL_DISPATCHER: "off" });
    const email = `bob-${Date.now()}@example.test`;
    const row = await signUp(first, email);
    expect(row.status).toBe("queued");
    await kill9(first);
    expect(requestsFor(row.id)).toEqual([]);

    const second = await start({ EMAIL_DISPATCHER: "on" });
    const sentAfter = await waitFor(async () => (await outbox(email))[0]?.status === "sent", 15_000, 100);
    // Room for a duplicate to show up, had one been on its way.
    await sleep(1_500);
    const [after] = await outbox(email);
    console.log(
      `[faults] kill -9 before dispatch: sent ${sentAfter === undefined ? "never (15 s)" : `${Math.round(sentAfter)} ms`} after the restart was ready; ` +
        `${requestsFor(row.id).length} provider request(s), ${deliveredFor(row.id).length} delivered`,
    );
    expect(sentAfter, `not sent within 15 s of the restart; row ${JSON.stringify(after)}`).toBeDefined();
    expect(deliveredFor(row.id)).toHaveLength(1);
    expect(requestsFor(row.id)).toHaveLength(1);
    expect(after!.provider_message_id).toBe(deliveredFor(row.id)[0]!.providerId);
    dispatching = second;
  });

  it("delivers one message when the kill lands while the provider request is in flight", async () => {
    const first = dispatching ?? (await start({ EMAIL_DISPATCHER: "on" }));
    // The stand-in holds each request 3 s before it accepts it (and answers).
    fake.latencyMs = 3_000;
    const email = `carol-${Date.now()}@example.test`;
    const row = await signUp(first, email);
    // The provider request has arrived (the claim committed before it): kill while the stand-in holds it.
    const arrived = await waitFor(async () => tap.arrived.includes(row.id), 10_000, 20);
    expect(arrived, "the dispatcher sent nothing within 10 s").toBeDefined();
    await kill9(first);
    expect(deliveredFor(row.id), "the stand-in accepted the message before the kill").toEqual([]);
    // The stand-in accepts the held request although its client is gone: the provider has the mail.
    expect(await waitFor(async () => deliveredFor(row.id).length === 1, 5_000, 50)).toBeDefined();
    fake.latencyMs = 0;
    const [orphaned] = await outbox(email);
    expect(orphaned!.status).toBe("sending");

    // Its lease (60 s) runs out: aged here rather than waited for. A claim sets both the lease and
    // the row's next due time to its end (dispatcher.ts), so both are aged, as 60 s would age them.
    await owner`
      update email.email_sends set lease_until = now() - interval '1 second', next_attempt_at = now() - interval '1 second'
      where id = ${row.id}`;
    const second = await start({ EMAIL_DISPATCHER: "on" });
    const sentAfter = await waitFor(async () => (await outbox(email))[0]?.status === "sent", 15_000, 100);
    await sleep(1_500);
    const [after] = await outbox(email);
    console.log(
      `[faults] kill -9 with the provider request in flight: sent ${sentAfter === undefined ? "never (15 s)" : `${Math.round(sentAfter)} ms`} after the restart was ready; ` +
        `provider requests with its key: ${requestsFor(row.id).length}, delivered: ${deliveredFor(row.id).length}, attempts ${after!.attempts}`,
    );
    expect(sentAfter, `not sent within 15 s of the restart; row ${JSON.stringify(after)}`).toBeDefined();
    expect(requestsFor(row.id).length).toBeGreaterThanOrEqual(2);
    expect(deliveredFor(row.id)).toHaveLength(1);
    expect(
      fake.requests
        .filter((r) => r.body && JSON.stringify(r.body).includes(email))
        .every((r) => r.idempotencyKey === row.id),
    ).toBe(true);
    expect(after!.provider_message_id).toBe(deliveredFor(row.id)[0]!.providerId);
    await stop(second);
  });
});
