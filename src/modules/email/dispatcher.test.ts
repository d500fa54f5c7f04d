/**
 * The dispatcher against the real Resend SDK pointed at a local stand-in, on isolated databases in the
 * run's topology (claims, NOTIFY and leases need real commits).
 */
import { randomUUID } from "node:crypto";
import v8 from "node:v8";
import vm from "node:vm";
import type postgres from "postgres";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { createIsolatedTopology, type IsolatedTopology } from "../../../test/support.js";
import { createSdk, type Sdk } from "../../index.js";
import { withDeadline } from "./deadline.js";
import { batchKeyOf, retryDelay } from "./outcomes.js";
import { startFakeResend, type FakeResend, type FakeResendAnswer } from "./testing/fake-resend.js";

let db: IsolatedTopology;
let fake: FakeResend;
let sdk: Sdk;
let owner: postgres.Sql;

const verifyData = { name: "Ada", url: "https://app.example.test/verify?token=abc" };

const sdkOptions = (onQuery?: (database: string, query: string) => void) => ({
  databaseUrl: db.main.url,
  databaseAppUrl: db.main.appUrl,
  ...db.placement,
  environment: "test" as const,
  onQuery,
  // With audit on a database of its own the tests apply the outbox themselves (auditSettled): a
  // relay of its own would hold connections of the pool the connection-budget test counts.
  outboxRelay: { autoStart: false },
  email: {
    resendApiKey: "re_test_key",
    resendBaseUrl: fake.url,
    unsubscribeSecret: "s".repeat(32),
    from: "Test <no-reply@example.test>",
    dispatcherOptions: { leaseMs: 1_000, backoffBaseMs: 20, backoffMaxMs: 100, pollIntervalMs: 50, batchSize: 100 },
  },
});

beforeAll(async () => {
  db = await createIsolatedTopology();
  fake = await startFakeResend();
  owner = db.owner;
  sdk = createSdk(sdkOptions());
});

afterAll(async () => {
  await sdk?.close();
  await fake?.close();
  await db?.drop();
});

beforeEach(async () => {
  fake.reset();
  fake.latencyMs = 0;
  await owner`delete from email.email_sends`;
});

async function enqueue(count: number, template = "verify-email"): Promise<string[]> {
  return sdk.transaction(async () => {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const { id } = await sdk.email.enqueueEmail({
        to: `user${i}-${randomUUID()}@example.test`,
        template,
        data: verifyData,
      });
      ids.push(id);
    }
    return ids;
  });
}

const rowsOf = (ids: string[]) =>
  owner<
    {
      id: string;
      status: string;
      attempts: number;
      provider_message_id: string | null;
      lease_until: Date | null;
      claimed_by: string | null;
      last_error: string | null;
      next_attempt_at: Date;
    }[]
  >`
    select id, status, attempts, provider_message_id, lease_until, claimed_by, last_error, next_attempt_at
    from email.email_sends where id = any(${ids}::uuid[])`;

/** Audit rows reach a split audit database after the commit, through the outbox: drained first. */
/** Applies what the outbox holds: audit rows reach a split audit database after the commit. */
async function auditSettled() {
  while ((await sdk.outbox.drainOnce()) > 0);
}

async function auditActions(id: string) {
  await auditSettled();
  const rows = await db.ownerSqlFor("audit")<{ action: string }[]>`
    select action from audit.audit_logs where target_id = ${id} order by id`;
  return rows.map((r) => r.action);
}

async function until(condition: () => Promise<boolean> | boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Dispatches until every given row has left the queue (retries included). */
async function drain(ids: string[], dispatchOnce = () => sdk.email.dispatchOnce()) {
  await until(async () => {
    await dispatchOnce();
    return (await rowsOf(ids)).every((r) => !["queued", "sending"].includes(r.status));
  });
}

describe("dispatcher", () => {
  it("sends one row with its id as Idempotency-Key, and several through the batch endpoint under a batch key", async () => {
    const [single] = await enqueue(1);
    expect(await sdk.email.dispatchOnce()).toBe(1);
    expect(fake.requests).toMatchObject([
      { path: "/emails", idempotencyKey: single, authorization: "Bearer re_test_key" },
    ]);

    fake.reset();
    const many = await enqueue(3);
    expect(await sdk.email.dispatchOnce()).toBe(3);
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]).toMatchObject({ path: "/emails/batch", idempotencyKey: batchKeyOf(many) });
    const rows = await rowsOf(many);
    expect(rows.every((r) => r.status === "sent" && r.provider_message_id && !r.lease_until && !r.claimed_by)).toBe(
      true,
    );
    expect(new Set(fake.delivered.map((d) => d.sendId))).toEqual(new Set(many));
    // One audit event per batch and tenant lists every send.
    await auditSettled();
    const [sent] = await db.ownerSqlFor("audit")<{ metadata: { sendIds: string[] } }[]>`
      select metadata from audit.audit_logs where action = 'email.sent' and target_id = any(${many}::text[])`;
    expect(new Set(sent!.metadata.sendIds)).toEqual(new Set(many));
  });

  it("retries 429 (honouring Retry-After) and 500 under one idempotency key, then sends once", async () => {
    const [id] = await enqueue(1);
    fake.script({ status: 429, retryAfter: 1 }, { status: 500 });
    const before = Date.now();
    await sdk.email.dispatchOnce();
    const [afterRateLimit] = await rowsOf([id!]);
    expect(afterRateLimit).toMatchObject({ status: "queued", attempts: 1, claimed_by: null });
    expect(afterRateLimit!.last_error).toContain("429");
    // Retry-After: 1 s beats the 20 ms backoff.
    expect(afterRateLimit!.next_attempt_at.getTime() - before).toBeGreaterThanOrEqual(900);
    expect(await sdk.email.dispatchOnce()).toBe(0);

    await drain([id!]);
    expect(fake.requests.map((r) => [r.answered, r.idempotencyKey])).toEqual([
      [429, id],
      [500, id],
      [200, id],
    ]);
    expect(fake.delivered).toHaveLength(1);
    expect(await auditActions(id!)).toEqual([
      "email.queued",
      "email.retry_scheduled",
      "email.retry_scheduled",
      "email.sent",
    ]);
  });

  it("retries a failed batch as the same batch under the same key", async () => {
    const ids = await enqueue(4);
    fake.script({ status: 503 });
    await sdk.email.dispatchOnce();
    // One delay for the request: its rows come back due together.
    expect(new Set((await rowsOf(ids)).map((r) => r.next_attempt_at.getTime())).size).toBe(1);
    await drain(ids);
    expect(fake.requests.map((r) => [r.path, r.answered, r.idempotencyKey])).toEqual([
      ["/emails/batch", 503, batchKeyOf(ids)],
      ["/emails/batch", 200, batchKeyOf(ids)],
    ]);
    expect(fake.delivered).toHaveLength(4);
  });

  it("abandons a hanging request after the timeout and retries it under the same key", async () => {
    const [id] = await enqueue(1);
    fake.script("hang");
    const started = Date.now();
    await sdk.email.dispatchOnce();
    // The request timeout is capped at half the 1 s lease.
    expect(Date.now() - started).toBeLessThan(900);
    expect((await rowsOf([id!]))[0]).toMatchObject({ status: "queued", attempts: 1 });
    await drain([id!]);
    expect(fake.requests.map((r) => [r.answered, r.idempotencyKey])).toEqual([
      ["hang", id],
      [200, id],
    ]);
  });

  it("marks a permanent 4xx failed, and sends a refused batch one row at a time", async () => {
    const [single] = await enqueue(1);
    fake.script({ status: 422, message: "Invalid `to` field" });
    await sdk.email.dispatchOnce();
    expect((await rowsOf([single!]))[0]).toMatchObject({ status: "failed", attempts: 1 });
    expect(await auditActions(single!)).toEqual(["email.queued", "email.failed"]);

    fake.reset();
    const pair = await enqueue(2);
    fake.script({ status: 422 });
    await sdk.email.dispatchOnce();
    expect(fake.requests.map((r) => [r.path, r.answered])).toEqual([
      ["/emails/batch", 422],
      ["/emails", 200],
      ["/emails", 200],
    ]);
    expect(new Set(fake.requests.slice(1).map((r) => r.idempotencyKey))).toEqual(new Set(pair));
    expect((await rowsOf(pair)).every((r) => r.status === "sent")).toBe(true);
  });

  it("marks a row dead when its attempts are exhausted", async () => {
    const [id] = await enqueue(1);
    await owner`update email.email_sends set max_attempts = 2 where id = ${id!}`;
    fake.failAll({ status: 500 });
    await drain([id!]);
    expect((await rowsOf([id!]))[0]).toMatchObject({ status: "dead", attempts: 2 });
    expect(fake.requests).toHaveLength(2);
    expect(await auditActions(id!)).toEqual(["email.queued", "email.retry_scheduled", "email.dead"]);
  });

  it("reclaims a row after the lease when its dispatcher crashed between claim and send, and sends it once", async () => {
    const ids = await enqueue(3);
    const crashed = sdk.email.createDispatcher();
    const survivor = sdk.email.createDispatcher();
    const claimedAt = Date.now();
    expect(await crashed.claim()).toHaveLength(3);
    // Next due when the 1 s lease runs out, all three at the same moment.
    const due = new Set((await rowsOf(ids)).map((r) => r.next_attempt_at.getTime()));
    expect(due.size).toBe(1);
    expect([...due][0]! - claimedAt).toBeGreaterThan(500);
    // The lease holds: nobody else may take the rows yet.
    expect(await survivor.dispatchOnce()).toBe(0);
    await new Promise((r) => setTimeout(r, 1_100));
    expect(await survivor.dispatchOnce()).toBe(3);
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]).toMatchObject({ path: "/emails/batch", idempotencyKey: batchKeyOf(ids) });
    expect(fake.delivered).toHaveLength(3);
    expect((await rowsOf(ids)).every((r) => r.status === "sent" && r.attempts === 2)).toBe(true);
  });

  it("claims several batches in one cycle, each under the key of its own rows, and sends them at once", async () => {
    const ids = await enqueue(7);
    const dispatcher = sdk.email.createDispatcher({ batchSize: 3, batchesPerCycle: 3 });
    expect(await dispatcher.dispatchOnce()).toBe(7);
    // 3 + 3 + 1: two batch requests and the odd row on its own.
    const batches = fake.requests.filter((r) => r.path === "/emails/batch");
    expect(batches).toHaveLength(2);
    const sendIdsOf = (body: unknown) =>
      (body as { tags: { name: string; value: string }[] }[]).map(
        (m) => m.tags.find((t) => t.name === "send_id")!.value,
      );
    for (const request of batches) expect(request.idempotencyKey).toBe(batchKeyOf(sendIdsOf(request.body)));
    const single = fake.requests.filter((r) => r.path === "/emails");
    expect(single).toHaveLength(1);
    const batched = batches.flatMap((r) => sendIdsOf(r.body));
    expect(new Set([...batched, single[0]!.idempotencyKey])).toEqual(new Set(ids));
    expect(fake.delivered).toHaveLength(7);
    expect((await rowsOf(ids)).every((r) => r.status === "sent")).toBe(true);
  });

  it("claims a backlog sharing one next_attempt_at off email_sends_claim_idx, without sorting it", async () => {
    const statements: string[] = [];
    const probe = createSdk(sdkOptions((_database, query) => statements.push(query)));
    try {
      // One transaction's backlog: one now(), so one next_attempt_at for all of it.
      await owner`insert into email.email_sends (to_address, template_key, category, subject, html, text)
        select 'b' || k || '@example.test', 'welcome', 'account', 'Hi', '<p>Hi</p>', 'Hi' from generate_series(1, 2000) k`;
      await owner`analyze email.email_sends`;
      expect(await probe.email.createDispatcher().claim()).toHaveLength(500);
      const claim = statements.find((s) => s.trim().startsWith("with due as"))!;
      const plan = await owner.begin(async (tx) => {
        await tx.unsafe("set local role sv_app");
        await tx`select set_config('sv.tenant_id', '*', true)`;
        // As the claim's own transaction has it.
        await tx`select set_config('enable_sort', 'off', true)`;
        const rows = await tx.unsafe<{ "QUERY PLAN": string }[]>(`explain (generic_plan, costs off) ${claim}`);
        return rows.map((r) => r["QUERY PLAN"]).join("\n");
      });
      // Without an index in the claim's order there would be a Sort here, sorting off or not.
      expect(plan).toMatch(
        /CTE due\s+->\s+Limit\s+->\s+LockRows\s+->\s+Index Scan using email_sends_claim_idx on email_sends/,
      );
    } finally {
      await probe.close();
    }
  });

  it("holds at most maxConnections of the pool, and none while a provider request is in flight", async () => {
    const gate = sdk.router.pool("main").gate;
    const ids = await enqueue(40);
    fake.latencyMs = 20;
    const dispatcher = sdk.email.createDispatcher({
      batchSize: 2,
      batchesPerCycle: 1,
      concurrency: 6,
      maxConnections: 1,
      pollIntervalMs: 60_000,
    });
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, gate.active)), 1);
    try {
      await dispatcher.start();
      await until(async () => (await rowsOf(ids)).every((r) => r.status === "sent"));
    } finally {
      clearInterval(sampler);
      await dispatcher.stop();
    }
    expect(most).toBe(1);
    expect(fake.requests).toHaveLength(20);

    fake.latencyMs = 0;
    const one = sdk.email.createDispatcher({ concurrency: 1, pollIntervalMs: 60_000, requestTimeoutMs: 400 });
    fake.script("hang");
    await enqueue(1);
    await one.start();
    try {
      await until(() => fake.requests.length === 21);
      // The claim has committed and given its connection back before the request went out.
      expect(gate.active).toBe(0);
    } finally {
      await one.stop();
    }
  });

  it("holds every cycle's next claim until a 429's Retry-After has passed", async () => {
    const dispatcher = sdk.email.createDispatcher({ batchSize: 1, batchesPerCycle: 1, concurrency: 4 });
    fake.script({ status: 429, retryAfter: 1 });
    const [refused] = await enqueue(1);
    await dispatcher.start();
    try {
      await until(() => fake.requests.length === 1);
      // Due at once, with four cycles free and a NOTIFY to wake them.
      const later = await enqueue(3);
      await until(() => fake.requests.length >= 2, 5_000);
      // As the stand-in saw them (a test that polls under load notices the 429 late).
      expect(fake.requests[1]!.at - fake.requests[0]!.at).toBeGreaterThanOrEqual(900);
      await until(async () => (await rowsOf([refused!, ...later])).every((r) => r.status === "sent"), 5_000);
      expect(fake.requests.map((r) => r.answered)).toEqual([429, 200, 200, 200, 200]);
    } finally {
      await dispatcher.stop();
    }
  });

  it("never lets two dispatchers send one row twice", async () => {
    const ids = await enqueue(300);
    fake.latencyMs = 5;
    const a = sdk.email.createDispatcher({ batchSize: 40 });
    const b = sdk.email.createDispatcher({ batchSize: 40 });
    const work = { a: 0, b: 0 };
    await Promise.all([
      drain(ids, async () => (work.a += await a.dispatchOnce())),
      drain(ids, async () => (work.b += await b.dispatchOnce())),
    ]);
    const sendIds = fake.delivered.map((d) => d.sendId);
    expect(sendIds).toHaveLength(300);
    expect(new Set(sendIds)).toEqual(new Set(ids));
    expect(work.a + work.b).toBe(300);
    expect(work.a).toBeGreaterThan(0);
    expect(work.b).toBeGreaterThan(0);
  });

  it("wakes on NOTIFY at commit and sends nothing for a rolled-back transaction", async () => {
    const dispatcher = sdk.email.createDispatcher({ pollIntervalMs: 60_000 });
    await dispatcher.start();
    try {
      const rolledBack = `rolled-back-${randomUUID()}@example.test`;
      await expect(
        sdk.transaction(async () => {
          await sdk.email.enqueueEmail({ to: rolledBack, template: "verify-email", data: verifyData });
          throw new Error("abandon");
        }),
      ).rejects.toThrow("abandon");
      const started = Date.now();
      const [committed] = await enqueue(1);
      // The 60 s poll cannot be what wakes it.
      await until(async () => (await rowsOf([committed!]))[0]!.status === "sent", 5_000);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(fake.delivered.map((d) => d.sendId)).toEqual([committed]);
      expect(fake.delivered.some((d) => d.to === rolledBack)).toBe(false);
    } finally {
      await dispatcher.stop();
    }
  });

  it("does not lose a NOTIFY that arrives while a pass is still sending", async () => {
    const dispatcher = sdk.email.createDispatcher({ pollIntervalMs: 60_000, requestTimeoutMs: 400 });
    fake.script("hang");
    await enqueue(1);
    await dispatcher.start();
    try {
      await until(() => fake.requests.length === 1);
      // Committed while the pass that claimed the first row waits on the provider: nobody sleeps yet.
      const [second] = await enqueue(1);
      // The 60 s poll cannot be what picks it up.
      await until(async () => (await rowsOf([second!]))[0]!.status === "sent", 5_000);
      expect(fake.requests[0]!.answered).toBe("hang");
      expect(fake.delivered.map((d) => d.sendId)).toContain(second);
    } finally {
      await dispatcher.stop();
    }
  });

  it("returns its claimed rows to the queue on stop, without spending an attempt", async () => {
    const dispatcher = sdk.email.createDispatcher({ pollIntervalMs: 60_000 });
    fake.script("hang");
    const [id] = await enqueue(1);
    await dispatcher.start();
    await until(() => fake.requests.length === 1);
    await dispatcher.stop();
    await dispatcher.stop(); // idempotent
    const [row] = await rowsOf([id!]);
    expect(row).toMatchObject({ status: "queued", attempts: 0, claimed_by: null, lease_until: null });
    // Due again at once, not when the lease would have run out.
    expect(row!.next_attempt_at.getTime()).toBeLessThanOrEqual(Date.now());
  });

  it("computes backoff that grows, stays jittered within bounds, and honours Retry-After", () => {
    for (let attempt = 1; attempt <= 6; attempt++) {
      const delay = retryDelay(attempt, 100, 1_000);
      const ceiling = Math.min(1_000, 100 * 2 ** (attempt - 1));
      expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
      expect(delay).toBeLessThanOrEqual(ceiling);
    }
    expect(retryDelay(1, 100, 1_000, 5_000)).toBe(5_000);
  });
});

/** A full garbage collection on demand, without starting the worker with --expose-gc. */
function inProcessGc(): () => void {
  v8.setFlagsFromString("--expose-gc");
  return vm.runInNewContext("gc") as () => void;
}

describe("dispatcher under provider faults", () => {
  it("keeps its request deadline through garbage collections, retries the hung row and keeps sending (nodejs/node#57736)", async () => {
    const gc = inProcessGc();
    // The lease is 1 s (module options): 400 ms is inside half of it.
    const dispatcher = sdk.email.createDispatcher({ requestTimeoutMs: 400, pollIntervalMs: 50 });
    fake.script("hang");
    const [hung] = await enqueue(1);
    await dispatcher.start();
    try {
      await until(() => fake.requests.length === 1);
      // While the request hangs. A full collection takes a while here, so not many more.
      gc();
      gc();
      await until(async () => (await rowsOf([hung!]))[0]!.status === "sent", 5_000);
      const [later] = await enqueue(1);
      await until(async () => (await rowsOf([later!]))[0]!.status === "sent", 5_000);
      expect(fake.requests.map((r) => [r.answered, r.idempotencyKey])).toEqual([
        ["hang", hung],
        [200, hung],
        [200, later],
      ]);
      expect(fake.delivered).toHaveLength(2);
    } finally {
      await dispatcher.stop();
    }
  });

  it("moves on when a request ignores its abort, and leaves the row to its lease", async () => {
    // The SDK's fetch, minus the signal: the request can only end when the stand-in answers.
    const realFetch = globalThis.fetch;
    const deaf = vi
      .spyOn(globalThis, "fetch")
      .mockImplementation((input, init) => realFetch(input, { ...init, signal: null }));
    try {
      const dispatcher = sdk.email.createDispatcher({ requestTimeoutMs: 200 });
      fake.script("hang");
      const [hung] = await enqueue(1);
      const started = Date.now();
      expect(await dispatcher.dispatchOnce()).toBe(1);
      // Deadline plus grace, inside the 1 s lease.
      expect(Date.now() - started).toBeLessThan(900);
      // Still claimed: nobody sends it again while the abandoned request might.
      expect((await rowsOf([hung!]))[0]).toMatchObject({ status: "sending", attempts: 1, claimed_by: dispatcher.id });
      expect(await dispatcher.dispatchOnce()).toBe(0);

      const [later] = await enqueue(1);
      expect(await dispatcher.dispatchOnce()).toBe(1);
      expect((await rowsOf([later!]))[0]).toMatchObject({ status: "sent" });

      // Once the lease runs out, the row is claimed again and sent under its own key.
      await drain([hung!], () => dispatcher.dispatchOnce());
      expect((await rowsOf([hung!]))[0]).toMatchObject({ status: "sent", attempts: 2 });
      expect(fake.requests.map((r) => [r.answered, r.idempotencyKey])).toEqual([
        ["hang", hung],
        [200, later],
        [200, hung],
      ]);
    } finally {
      deaf.mockRestore();
    }
  });

  it.each<[string, Exclude<FakeResendAnswer, "hang">]>([
    [
      "a 503 with an HTML page",
      { status: 503, body: "<html><body>503 Service Unavailable</body></html>", contentType: "text/html" },
    ],
    ["a 503 whose JSON body is {}", { status: 503, body: "{}" }],
    ["a 503 whose JSON body has no statusCode", { status: 503, body: '{"message":"no healthy upstream"}' }],
    ["a 502 with an empty body", { status: 502, body: "", contentType: "text/plain" }],
  ])("keeps a row queued on %s, then sends it exactly once when the provider recovers", async (_, answer) => {
    const [id] = await enqueue(1);
    fake.script(answer);
    await sdk.email.dispatchOnce();
    const [row] = await rowsOf([id!]);
    expect(row).toMatchObject({ status: "queued", attempts: 1, claimed_by: null });
    expect(row!.last_error).toBeTruthy();
    expect(await auditActions(id!)).toEqual(["email.queued", "email.retry_scheduled"]);

    await drain([id!]);
    expect((await rowsOf([id!]))[0]).toMatchObject({ status: "sent", attempts: 2 });
    expect(fake.requests.map((r) => [r.answered, r.idempotencyKey])).toEqual([
      [answer.status, id],
      [200, id],
    ]);
    expect(fake.delivered.map((d) => d.sendId)).toEqual([id]);
  });

  it("retries a batch answered 503 without statusCode as the same batch under the same key", async () => {
    const ids = await enqueue(3);
    fake.script({ status: 503, body: "{}" });
    await drain(ids);
    expect(fake.requests.map((r) => [r.path, r.answered, r.idempotencyKey])).toEqual([
      ["/emails/batch", 503, batchKeyOf(ids)],
      ["/emails/batch", 200, batchKeyOf(ids)],
    ]);
    expect(new Set(fake.delivered.map((d) => d.sendId))).toEqual(new Set(ids));
    expect(fake.delivered).toHaveLength(3);
  });
});

describe("withDeadline", () => {
  const listening = (signal: AbortSignal) =>
    new Promise<never>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason as Error)));

  it("aborts on time with AbortSignal.timeout out of order, and abandons a request that ignores the abort", async () => {
    // What nodejs/node#57736 does to a collected timeout signal: it never fires.
    const neverFires = vi.spyOn(AbortSignal, "timeout").mockImplementation(() => new AbortController().signal);
    try {
      const started = Date.now();
      await expect(withDeadline(listening, { timeoutMs: 50, graceMs: 50 })).rejects.toMatchObject({
        name: "TimeoutError",
      });
      expect(await withDeadline(() => new Promise<never>(() => {}), { timeoutMs: 50, graceMs: 50 })).toEqual({
        settled: false,
      });
      expect(Date.now() - started).toBeLessThan(1_000);
    } finally {
      neverFires.mockRestore();
    }
  });

  it("aborts when its parent does, and reports a request answered in time as settled", async () => {
    const parent = new AbortController();
    const stopped = withDeadline(listening, { timeoutMs: 60_000, graceMs: 50, parent: parent.signal });
    parent.abort(new Error("stopping"));
    await expect(stopped).rejects.toThrow("stopping");
    expect(await withDeadline(async () => "answer", { timeoutMs: 50, graceMs: 50 })).toEqual({
      settled: true,
      value: "answer",
      timedOut: false,
    });
  });
});

describe("development transport", () => {
  it("records the rendered message instead of sending it", async () => {
    const dev = createSdk({
      databaseUrl: db.main.url,
      databaseAppUrl: db.main.appUrl,
      ...db.placement,
      environment: "test",
      outboxRelay: { autoStart: false },
    });
    try {
      const id = await dev.transaction(
        async () =>
          (await dev.email.enqueueEmail({ to: "dev@example.test", template: "verify-email", data: verifyData })).id,
      );
      expect(dev.email.transport).toBe("development");
      await dev.email.dispatchOnce();
      const [message] = await dev.email.listDevMessages({ to: "dev@example.test" });
      expect(message).toMatchObject({ sendId: id, subject: "Verify your email address" });
      expect(message!.html).toContain("https://app.example.test/verify?token=abc");
      expect((await dev.email.getDevMessage(message!.id)).id).toBe(message!.id);
      expect((await rowsOf([id]))[0]).toMatchObject({ status: "sent" });
      expect(fake.requests).toHaveLength(0);

      // Its sends are database writes: they count against the dispatcher's connections too.
      const ids = await dev.transaction(async () => {
        const sent: string[] = [];
        for (let i = 0; i < 12; i++)
          sent.push(
            (await dev.email.enqueueEmail({ to: `dev${i}@example.test`, template: "verify-email", data: verifyData }))
              .id,
          );
        return sent;
      });
      const gate = dev.router.pool("main").gate;
      let most = 0;
      const sampler = setInterval(() => (most = Math.max(most, gate.active)), 1);
      const dispatcher = dev.email.createDispatcher({
        batchSize: 1,
        batchesPerCycle: 3,
        concurrency: 4,
        maxConnections: 1,
        pollIntervalMs: 60_000,
      });
      try {
        await dispatcher.start();
        await until(async () => (await rowsOf(ids)).every((r) => r.status === "sent"));
      } finally {
        clearInterval(sampler);
        await dispatcher.stop();
      }
      expect(most).toBe(1);
    } finally {
      await dev.close();
    }
  });
});
