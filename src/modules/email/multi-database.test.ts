/**
 * Email when a tenant lives in a database of its own: two real databases cloned from the migrated
 * template (main, tenant_db), a tenant moved to tenant_db with `moveTenant`, and the real Resend SDK
 * against the local stand-in. The tenant's sends are written, claimed, sent, recorded and updated by
 * webhooks in tenant_db; suppressions and preferences stay one list, in the email schema's database.
 */
import { coreCatalog } from "../../core-modules.js";
import { createHmac, randomBytes, randomUUID } from "node:crypto";
import type postgres from "postgres";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { cheapHashingTestSdkOptions, useTwoDatabases } from "../../../test/support.js";
import { moveTenant } from "../../db/tenant-move.js";
import type { Topology } from "../../db/topology.js";
import { createMailViewer } from "./viewer.js";
import { createSdk, type Sdk } from "../../index.js";
import { startFakeResend, type FakeResend } from "./testing/fake-resend.js";

const webhookSecret = `whsec_${randomBytes(24).toString("base64")}`;
const welcome = { name: "Ada" };

const databases = useTwoDatabases();
let mainSql: postgres.Sql;
let tenantSql: postgres.Sql;
let topology: Topology;
let fake: FakeResend;
let sdk: Sdk;
let moved: string;
let stayed: string;

const address = (name: string) => `${name}-${randomUUID()}@example.test`;

interface SendRow {
  id: string;
  tenant_id: string | null;
  user_id: string | null;
  status: string;
  skip_reason: string | null;
  provider_message_id: string | null;
}
const sendIn = async (sql: postgres.Sql, id: string) =>
  (
    await sql<
      SendRow[]
    >`select id, tenant_id, user_id, status, skip_reason, provider_message_id from email.email_sends where id = ${id}`
  )[0];

async function until(condition: () => Promise<boolean>, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}

function signedWebhook(event: Record<string, unknown>) {
  const id = `msg_${randomUUID()}`;
  const body = JSON.stringify({ created_at: new Date().toISOString(), ...event });
  const timestamp = String(Math.floor(Date.now() / 1000));
  const key = Buffer.from(webhookSecret.slice("whsec_".length), "base64");
  const signature = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64");
  return [body, { "svix-id": id, "svix-timestamp": timestamp, "svix-signature": `v1,${signature}` }] as const;
}

async function createOrganization(name: string): Promise<string> {
  const id = randomUUID();
  await mainSql`insert into auth.organizations (id, name, slug) values (${id}, ${name}, ${`${name}-${id}`})`;
  return id;
}

const createUser = async (name: string) =>
  (await sdk.auth.createUser({ email: address(name), password: "correct horse battery", name, emailVerified: true }))
    .id;

beforeAll(async () => {
  ({ mainSql, tenantSql, topology } = databases);
  // The default templates a moved tenant falls back to live in its own database too.
  const seeder = createSdk(cheapHashingTestSdkOptions(databases.tenantDb));
  await seeder.seed();
  await seeder.close();

  fake = await startFakeResend();
  sdk = createSdk(
    cheapHashingTestSdkOptions(databases.main, {
      topology,
      // Known cross-database unit, not converted yet (issue 16): a webhook for a moved tenant's send
      // updates the send in its database and writes the suppression in the email schema's (main).
      // The check (src/db/unit-of-work.ts) reports it; until it goes through the outbox, this file allows it.
      crossDatabaseWrites: "allow",
      email: {
        resendApiKey: "re_test_key",
        resendBaseUrl: fake.url,
        webhookSecret,
        unsubscribeSecret: "s".repeat(32),
        publicUrl: "https://app.example.test",
        from: "Test <no-reply@example.test>",
        dispatcherOptions: { backoffBaseMs: 20, backoffMaxMs: 100, pollIntervalMs: 50 },
      },
    }),
  );
  moved = await createOrganization("moved");
  stayed = await createOrganization("stayed");
  await moveTenant({ catalog: coreCatalog(), topology, tenantId: moved, to: "tenant_db" });
}, 60_000);

afterAll(async () => {
  await sdk?.close();
  await fake?.close();
});

beforeEach(() => fake.reset());

describe("email with a tenant in its own database", () => {
  it("writes a moved tenant's mail in its database, and one dispatch delivers it and a main tenant's mail", async () => {
    const [movedSend, stayedSend] = await Promise.all([
      sdk.withTenant(moved, () => sdk.email.enqueueEmail({ to: address("moved"), template: "welcome", data: welcome })),
      sdk.withTenant(stayed, () =>
        sdk.email.enqueueEmail({ to: address("stayed"), template: "welcome", data: welcome }),
      ),
    ]);
    expect(await sendIn(tenantSql, movedSend.id)).toMatchObject({ tenant_id: moved, status: "queued" });
    expect(await sendIn(mainSql, movedSend.id)).toBeUndefined();
    expect(await sendIn(mainSql, stayedSend.id)).toMatchObject({ tenant_id: stayed, status: "queued" });

    await until(async () => {
      await sdk.email.dispatchOnce();
      return (
        (await sendIn(tenantSql, movedSend.id))!.status === "sent" &&
        (await sendIn(mainSql, stayedSend.id))!.status === "sent"
      );
    });
    const sendIds = fake.delivered.map((d) => d.sendId);
    expect(sendIds).toContain(movedSend.id);
    expect(sendIds).toContain(stayedSend.id);
    // A row sent on its own carries its id as the Idempotency-Key, wherever it lives.
    expect(fake.requests.find((r) => r.idempotencyKey === movedSend.id)).toMatchObject({
      path: "/emails",
      answered: 200,
    });
    const row = (await sendIn(tenantSql, movedSend.id))!;
    expect(row.provider_message_id).toBe(fake.delivered.find((d) => d.sendId === movedSend.id)!.providerId);
    // The outcome is audited beside the tenant's rows.
    const [sent] = await tenantSql<{ tenant_id: string }[]>`
      select tenant_id from audit.audit_logs where action = 'email.sent' and ${movedSend.id} = any(select jsonb_array_elements_text(metadata->'sendIds'))`;
    expect(sent).toMatchObject({ tenant_id: moved });
  });

  it("wakes on a NOTIFY from the tenant's database", async () => {
    const dispatcher = sdk.email.createDispatcher({ pollIntervalMs: 60_000 });
    await dispatcher.start();
    try {
      // Let the first cycle run out before the mail exists: only the notification can wake it now.
      await new Promise((r) => setTimeout(r, 200));
      const { id } = await sdk.withTenant(moved, () =>
        sdk.email.enqueueEmail({ to: address("notify"), template: "welcome", data: welcome }),
      );
      await until(async () => (await sendIn(tenantSql, id))!.status === "sent");
    } finally {
      await dispatcher.stop();
    }
  });

  it("applies a webhook to the send in the tenant's database, and suppresses in the email schema's database", async () => {
    const to = address("bounce");
    const { id } = await sdk.withTenant(moved, () =>
      sdk.email.enqueueEmail({ to, template: "welcome", data: welcome }),
    );
    await until(async () => {
      await sdk.email.dispatchOnce();
      return (await sendIn(tenantSql, id))!.status === "sent";
    });
    const providerId = (await sendIn(tenantSql, id))!.provider_message_id!;

    const delivered = await sdk.email.handleResendWebhook(
      ...signedWebhook({ type: "email.delivered", data: { email_id: providerId, to: [to] } }),
    );
    expect(delivered).toMatchObject({ outcome: "processed", sendId: id, status: "delivered" });
    expect(await sendIn(tenantSql, id)).toMatchObject({ status: "delivered" });
    const [{ events }] =
      (await tenantSql`select count(*)::int as events from email.email_events where send_id = ${id}`) as unknown as [
        { events: number },
      ];
    expect(events).toBe(1);

    const bounce = signedWebhook({
      type: "email.bounced",
      data: { email_id: providerId, to: [to], bounce: { type: "Permanent" } },
    });
    expect(await sdk.email.handleResendWebhook(...bounce)).toMatchObject({ outcome: "processed", status: "bounced" });
    expect(await sdk.email.handleResendWebhook(...bounce)).toMatchObject({ outcome: "replayed", sendId: id });
    expect(await mainSql`select reason from email.suppressions where email = ${to}`).toEqual([
      { reason: "hard_bounce" },
    ]);
    expect(await tenantSql`select 1 from email.suppressions where email = ${to}`).toHaveLength(0);
  });

  it("does not mail a suppressed address or an opted-out user for a moved tenant", async () => {
    const suppressed = address("suppressed");
    await mainSql`insert into email.suppressions (email, reason) values (${suppressed}, 'manual')`;
    const user = await createUser("optout");
    // Changed inside the moved tenant's unit of work, still kept in the one list.
    await sdk.withTenant(moved, () => sdk.email.updatePreferences(user, [{ category: "product", optedOut: true }]));
    expect(await mainSql`select opted_out from email.email_preferences where user_id = ${user}`).toEqual([
      { opted_out: true },
    ]);
    expect(await tenantSql`select 1 from email.email_preferences where user_id = ${user}`).toHaveLength(0);

    const [bySuppression, byPreference] = await sdk.withTenant(moved, async () => [
      await sdk.email.enqueueEmail({ to: suppressed, template: "welcome", data: welcome }),
      await sdk.email.enqueueEmail({ userId: user, template: "welcome", data: welcome, category: "product" }),
    ]);
    expect(bySuppression).toMatchObject({ status: "skipped", skipReason: "suppressed" });
    expect(byPreference).toMatchObject({ status: "skipped", skipReason: "opted_out" });
    expect(await sendIn(tenantSql, bySuppression!.id)).toMatchObject({ status: "skipped", skip_reason: "suppressed" });

    await sdk.email.dispatchOnce();
    expect(fake.delivered.some((d) => d.to === suppressed || d.sendId === byPreference!.id)).toBe(false);
  });

  it("copies a user the tenant's database does not have yet before a user-linked send", async () => {
    const user = await createUser("newcomer");
    expect(await tenantSql`select 1 from auth.users where id = ${user}`).toHaveLength(0);
    const { id } = await sdk.withTenant(moved, () =>
      sdk.email.enqueueEmail({ userId: user, template: "welcome", data: welcome }),
    );
    expect(await tenantSql`select 1 from auth.users where id = ${user}`).toHaveLength(1);
    expect(await sendIn(tenantSql, id)).toMatchObject({ user_id: user, tenant_id: moved, status: "queued" });
    await until(async () => {
      await sdk.email.dispatchOnce();
      return (await sendIn(tenantSql, id))!.status === "sent";
    });
  });

  it("records development mail beside its send, and lists and shows it from every database", async () => {
    await until(async () => (await sdk.email.dispatchOnce()) === 0);
    const dev = createSdk(cheapHashingTestSdkOptions(databases.main, { topology }));
    try {
      const to = address("dev");
      const [movedSend, mainSend] = await Promise.all([
        dev.withTenant(moved, () => dev.email.enqueueEmail({ to, template: "welcome", data: welcome })),
        dev.withTenant(stayed, () =>
          dev.email.enqueueEmail({
            to,
            template: "verify-email",
            data: { name: "Ada", url: "https://app.example.test/v" },
          }),
        ),
      ]);
      await dev.email.dispatchOnce();
      const [recorded] = await tenantSql<
        { id: string }[]
      >`select id from email.dev_messages where send_id = ${movedSend.id}`;
      expect(recorded).toBeDefined();
      expect(await mainSql`select 1 from email.dev_messages where send_id = ${movedSend.id}`).toHaveLength(0);

      const messages = await dev.email.listDevMessages({ to });
      expect(new Set(messages.map((m) => m.sendId))).toEqual(new Set([movedSend.id, mainSend.id]));
      expect((await dev.email.getDevMessage(recorded!.id)).sendId).toBe(movedSend.id);

      const viewer = createMailViewer({ email: dev.email });
      const list = await (await viewer.request(`/?to=${encodeURIComponent(to)}`)).text();
      expect(list).toContain(`/${recorded!.id}"`);
      expect(list).toContain("<code>welcome</code>");
      expect(list).toContain("<code>verify-email</code>");
      const page = await viewer.request(`/${recorded!.id}`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain(movedSend.id);
    } finally {
      await dev.close();
    }
  });
});
