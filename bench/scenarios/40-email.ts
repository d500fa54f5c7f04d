/**
 * Email: dispatch throughput to a local Resend stand-in (rows enqueued first, then the dispatcher
 * started with its defaults, as `npm start` runs it, and timed until every row is sent), and the cost
 * of enqueueEmail inside a transaction against a plain INSERT of the same row. Everything stays on
 * 127.0.0.1.
 */
import { sql } from "drizzle-orm";
import { createSdk } from "../../src/index.js";
import { emailSends } from "../../src/modules/email/index.js";
import { startFakeResend } from "../../src/modules/email/testing/fake-resend.js";
import type { Row, Scenario } from "../types.js";

const DISPATCH_ROWS = 5_000;
const DISPATCH_TARGET = 1_000;

const scenario: Scenario = async (ctx) => {
  const database = await ctx.freshDatabase();
  const fake = await startFakeResend();
  const sdk = createSdk({
    databaseUrl: database.url,
    environment: "test",
    email: {
      resendApiKey: "re_bench",
      resendBaseUrl: fake.url,
      unsubscribeSecret: "b".repeat(32),
      from: "Bench <bench@example.test>",
    },
  });
  const data = { name: "Bench", url: "https://app.example.test/verify?token=abc" };
  try {
    // Enqueue cost: one enqueueEmail (template, suppression and preference lookup, insert, NOTIFY,
    // audit) per transaction, against one INSERT of a rendered row per transaction.
    let n = 0;
    const enqueue = await ctx.measure(
      () =>
        sdk.transaction(() => sdk.email.enqueueEmail({ to: `e${n++}@example.test`, template: "verify-email", data })),
      { concurrency: 4 },
    );
    const insert = await ctx.measure(
      () =>
        sdk.transaction(() =>
          sdk.router
            .db("email")
            .insert(emailSends)
            .values({
              toAddress: `i${n++}@example.test`,
              templateKey: "verify-email",
              category: "account",
              subject: "Verify your email address",
              html: "<p>Hi</p>",
              text: "Hi",
              status: "skipped",
            }),
        ),
      { concurrency: 4 },
    );
    // The measured enqueues are due too: they are part of the dispatch below.
    const queuedBefore = enqueue.count;

    for (let i = 0; i < DISPATCH_ROWS; i += 250) {
      await sdk.transaction(async () => {
        for (let j = i; j < Math.min(i + 250, DISPATCH_ROWS); j++) {
          await sdk.email.enqueueEmail({ to: `d${j}@example.test`, template: "verify-email", data });
        }
      });
    }
    const total = DISPATCH_ROWS + queuedBefore;
    fake.reset();
    const anyLeft = async () =>
      sdk.withTenant("*", async () => {
        const [row] = await sdk.router
          .db("email")
          .execute<{ left: boolean }>(
            sql`select exists (select from email.email_sends where status in ('queued', 'sending')) as left`,
          );
        return row!.left;
      });
    const dispatcher = sdk.email.createDispatcher();
    const started = performance.now();
    await dispatcher.start();
    // Bounded: at a tenth of the target the row has failed anyway.
    const deadline = started + (10 * total * 1000) / DISPATCH_TARGET;
    while ((await anyLeft()) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const seconds = (performance.now() - started) / 1000;
    await dispatcher.stop();
    const delivered = fake.delivered.length;
    const perSecond = delivered / seconds;

    const rows: Row[] = [
      {
        scenario: "email: dispatch to local Resend stand-in (batch 100)",
        throughput: perSecond,
        unit: "emails/s",
        target: `>= ${DISPATCH_TARGET} emails/s`,
        pass: perSecond >= DISPATCH_TARGET && delivered === total,
        note: `${delivered}/${total} delivered in ${seconds.toFixed(2)} s, ${fake.requests.length} requests; dispatcher defaults (as npm start)`,
      },
      {
        scenario: "email: enqueueEmail in a transaction",
        throughput: enqueue.opsPerSecond,
        unit: "ops/s",
        p50Ms: enqueue.p50Ms,
        p99Ms: enqueue.p99Ms,
        ratio: { against: "email: plain INSERT in a transaction", value: enqueue.opsPerSecond / insert.opsPerSecond },
        note: "lookup (template, suppression, preference) + insert + NOTIFY + audit insert; 4 in flight",
      },
      {
        scenario: "email: plain INSERT in a transaction",
        throughput: insert.opsPerSecond,
        unit: "ops/s",
        p50Ms: insert.p50Ms,
        p99Ms: insert.p99Ms,
        note: "one email_sends row, 4 in flight",
      },
    ];
    return rows;
  } finally {
    await sdk.close();
    await fake.close();
    await database.drop();
  }
};

export default scenario;
