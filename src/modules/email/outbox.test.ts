import { randomUUID } from "node:crypto";
import { and, eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { useTestSdk } from "../../../test/support.js";
import { withRollback } from "../../testing/rollback.js";
import { auditLogs } from "../audit/index.js";
import { organizations, users } from "../auth/index.js";
import { emailPreferences, emailSends, emailTemplates, suppressions } from "./schema.js";

const { sdk, owner } = useTestSdk({ email: { publicUrl: "https://app.example.test" } });
const email = sdk.email;

async function newUser() {
  const user = { id: randomUUID(), name: "Ada Lovelace", email: `ada-${randomUUID()}@example.test` };
  await sdk.router.db("auth").insert(users).values(user);
  return user;
}

async function newTenant() {
  const [org] = await sdk.router
    .db("auth")
    .insert(organizations)
    .values({ name: "Acme", slug: `acme-${randomUUID()}` })
    .returning();
  return org!.id;
}

const sendRow = (id: string) =>
  sdk.withTenant(
    "*",
    async () => (await sdk.router.db("email").select().from(emailSends).where(eq(emailSends.id, id)))[0]!,
  );

const auditFor = (targetId: string) =>
  sdk.withTenant("*", () => sdk.router.db("audit").select().from(auditLogs).where(eq(auditLogs.targetId, targetId)));

const verifyData = { name: "Ada", url: "https://app.example.test/verify?token=abc" };

describe("templates and rendering", () => {
  it("ships the default templates, seeded idempotently without overwriting edits", () =>
    withRollback(sdk, async () => {
      const before = await email.listTemplates();
      const keys = before.map((t) => t.key);
      expect(keys).toEqual(
        expect.arrayContaining(["verify-email", "reset-password", "invitation", "welcome", "security-notice"]),
      );
      const verify = before.find((t) => t.key === "verify-email")!;
      await email.updateTemplate({ id: verify.id, input: { subject: "Please verify, {{name}}" } });
      await email.seed();
      const after = await email.listTemplates();
      expect(after).toHaveLength(before.length);
      expect(after.find((t) => t.id === verify.id)!.subject).toBe("Please verify, {{name}}");
    }));

  it("HTML-escapes variables in the HTML body and strips line breaks from the subject", () =>
    withRollback(sdk, async () => {
      const rendered = await email.renderTemplate({
        key: "security-notice",
        data: { name: `<script>alert("x")</script>`, event: "Sign-in\r\nBcc: victim@example.test", details: "a & b" },
      });
      expect(rendered.html).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
      expect(rendered.html).not.toContain("<script>");
      expect(rendered.html).toContain("a &amp; b");
      expect(rendered.subject).toBe("Security notice: Sign-in Bcc: victim@example.test");
      expect(rendered.text).toContain(`<script>alert("x")</script>`);
    }));

  it("rejects data that does not match the template's variables, naming the fields", async () => {
    await expect(
      email.renderTemplate({ key: "verify-email", data: { name: "Ada", url: "javascript:alert(1)" } }),
    ).rejects.toMatchObject({
      code: "TEMPLATE_DATA_INVALID",
      details: { errors: [expect.objectContaining({ path: "url" })] },
    });
    await expect(
      email.renderTemplate({ key: "verify-email", data: { name: "Ada", url: "https://x.test", extra: 1 } }),
    ).rejects.toMatchObject({
      code: "TEMPLATE_DATA_INVALID",
    });
  });

  it("refuses a template that uses variables its definition does not declare", () =>
    withRollback(sdk, async () => {
      await expect(
        email.createTemplate({
          input: { key: "welcome", locale: "fr", subject: "Bienvenue {{nmae}}", html: "<p>x</p>", text: "x" },
        }),
      ).rejects.toMatchObject({ code: "TEMPLATE_UNDECLARED_VARIABLE", details: { undeclared: ["nmae"] } });
      await expect(
        email.createTemplate({ input: { key: "no-such-template", subject: "s", html: "h", text: "t" } }),
      ).rejects.toMatchObject({ code: "TEMPLATE_UNKNOWN_KEY" });
    }));

  it("prefers the tenant's override and the most specific locale, falling back to the default", () =>
    withRollback(sdk, async () => {
      const tenantA = await newTenant();
      const tenantB = await newTenant();
      await email.createTemplate({
        tenantId: tenantA,
        input: { key: "welcome", subject: "A welcomes {{name}}", html: "<p>A</p>", text: "A" },
      });
      await email.createTemplate({
        input: { key: "welcome", locale: "de", subject: "Willkommen {{name}}", html: "<p>de</p>", text: "de" },
      });
      expect((await email.renderTemplate({ tenantId: tenantA, key: "welcome", data: { name: "Ada" } })).subject).toBe(
        "A welcomes Ada",
      );
      expect((await email.renderTemplate({ tenantId: tenantB, key: "welcome", data: { name: "Ada" } })).subject).toBe(
        "Welcome, Ada",
      );
      expect(
        (await email.renderTemplate({ tenantId: tenantB, key: "welcome", locale: "de-AT", data: { name: "Ada" } }))
          .subject,
      ).toBe("Willkommen Ada");
      // Tenant B cannot see, change or delete tenant A's override.
      const [overrideA] = await email
        .listTemplates({ tenantId: tenantA, key: "welcome" })
        .then((t) => t.filter((r) => r.tenantId));
      expect((await email.listTemplates({ tenantId: tenantB })).some((t) => t.tenantId === tenantA)).toBe(false);
      await expect(email.getTemplate({ tenantId: tenantB, id: overrideA!.id })).rejects.toMatchObject({
        code: "TEMPLATE_NOT_FOUND",
      });
      await expect(email.deleteTemplate({ tenantId: tenantB, id: overrideA!.id })).rejects.toMatchObject({
        code: "TEMPLATE_NOT_FOUND",
      });
    }));

  it("audits template changes with before and after, and bumps the version", () =>
    withRollback(sdk, async () => {
      const tenant = await newTenant();
      const created = await email.createTemplate({
        tenantId: tenant,
        input: { key: "welcome", subject: "Hi {{name}}", html: "<p>Hi</p>", text: "Hi" },
      });
      const updated = await email.updateTemplate({
        tenantId: tenant,
        id: created.id,
        input: { subject: "Hello {{name}}" },
      });
      expect(updated.version).toBe(2);
      await email.deleteTemplate({ tenantId: tenant, id: created.id });
      const events = await auditFor(created.id);
      expect(events.map((e) => e.action).sort()).toEqual([
        "email.template_created",
        "email.template_deleted",
        "email.template_updated",
      ]);
      const update = events.find((e) => e.action === "email.template_updated")!;
      expect(update.tenantId).toBe(tenant);
      expect(update.changes).toMatchObject({
        before: { subject: "Hi {{name}}" },
        after: { subject: "Hello {{name}}" },
      });
    }));

  it("refuses to delete a shipped default", () =>
    withRollback(sdk, async () => {
      const [verify] = await email.listTemplates({ key: "verify-email" });
      await expect(email.deleteTemplate({ id: verify!.id })).rejects.toMatchObject({ code: "TEMPLATE_IS_DEFAULT" });
    }));
});

describe("enqueueEmail", () => {
  it("writes a queued send with the rendered message and an audit event in the caller's transaction", () =>
    withRollback(sdk, async () => {
      const user = await newUser();
      const result = await email.enqueueEmail({ userId: user.id, template: "verify-email", data: verifyData });
      expect(result).toEqual({ id: expect.any(String), status: "queued" });
      const row = await sendRow(result.id);
      expect(row).toMatchObject({
        toAddress: user.email,
        category: "account",
        status: "queued",
        templateKey: "verify-email",
      });
      expect(row.html).toContain("https://app.example.test/verify?token=abc");
      expect(row.headers).toBeNull();
      const [event] = await auditFor(result.id);
      expect(event).toMatchObject({ action: "email.queued", targetType: "email_send" });
    }));

  it("leaves nothing behind when the caller's transaction rolls back", async () => {
    const marker = `rollback-${randomUUID()}@example.test`;
    const failure = new Error("the caller fails after enqueueing");
    await expect(
      sdk.transaction(async () => {
        await email.enqueueEmail({ to: marker, template: "verify-email", data: verifyData });
        throw failure;
      }),
    ).rejects.toBe(failure);
    const [row] = await owner`select count(*)::int as n from email.email_sends where to_address = ${marker}`;
    expect(row!.n).toBe(0);
  });

  it("skips a suppressed address with the reason recorded, whatever the category", () =>
    withRollback(sdk, async () => {
      const address = `bounced-${randomUUID()}@example.test`;
      await sdk.router.db("email").insert(suppressions).values({ email: address, reason: "hard_bounce" });
      const result = await email.enqueueEmail({
        to: address.toUpperCase(),
        template: "security-notice",
        data: { name: "A", event: "e" },
      });
      expect(result).toEqual({ id: expect.any(String), status: "skipped", skipReason: "suppressed" });
      const [event] = await auditFor(result.id);
      expect(event).toMatchObject({
        action: "email.skipped",
        metadata: expect.objectContaining({ skipReason: "suppressed" }),
      });
    }));

  it("skips an opted-out category but never account or security mail", () =>
    withRollback(sdk, async () => {
      const user = await newUser();
      await sdk.router
        .db("email")
        .insert(emailPreferences)
        .values([
          { userId: user.id, category: "product", optedOut: true },
          // Written behind the API's back: even then, account mail goes out.
          { userId: user.id, category: "account", optedOut: true },
        ]);
      const welcome = await email.enqueueEmail({ userId: user.id, template: "welcome", data: { name: "Ada" } });
      expect(welcome).toMatchObject({ status: "skipped", skipReason: "opted_out" });
      const verify = await email.enqueueEmail({ userId: user.id, template: "verify-email", data: verifyData });
      expect(verify.status).toBe("queued");
    }));

  it("adds RFC 8058 unsubscribe headers to non-account mail only", () =>
    withRollback(sdk, async () => {
      const user = await newUser();
      const welcome = await email.enqueueEmail({ userId: user.id, template: "welcome", data: { name: "Ada" } });
      const headers = (await sendRow(welcome.id)).headers!;
      expect(headers["List-Unsubscribe-Post"]).toBe("List-Unsubscribe=One-Click");
      expect(headers["List-Unsubscribe"]).toMatch(
        /^<https:\/\/app\.example\.test\/api\/v1\/email\/unsubscribe\?token=[\w-]+\.[\w-]+>$/,
      );
      const reset = await email.enqueueEmail({ userId: user.id, template: "reset-password", data: verifyData });
      expect((await sendRow(reset.id)).headers).toBeNull();
    }));

  it("treats mail to a user's address as that user's: their opt-out and their unsubscribe link apply", () =>
    withRollback(sdk, async () => {
      const user = await newUser();
      const welcome = await email.enqueueEmail({
        to: user.email.toUpperCase(),
        template: "welcome",
        data: { name: "Ada" },
      });
      const row = await sendRow(welcome.id);
      expect(row.userId).toBe(user.id);
      expect(row.headers!["List-Unsubscribe-Post"]).toBe("List-Unsubscribe=One-Click");

      await sdk.router
        .db("email")
        .insert(emailPreferences)
        .values({ userId: user.id, category: "product", optedOut: true });
      const again = await email.enqueueEmail({ to: user.email, template: "welcome", data: { name: "Ada" } });
      expect(again).toMatchObject({ status: "skipped", skipReason: "opted_out" });

      const stranger = await email.enqueueEmail({
        to: `nobody-${randomUUID()}@example.test`,
        template: "welcome",
        data: { name: "X" },
      });
      expect((await sendRow(stranger.id)).userId).toBeNull();
    }));

  it("returns the first send for a repeated idempotency key", () =>
    withRollback(sdk, async () => {
      const key = `signup-${randomUUID()}`;
      const first = await email.enqueueEmail({
        to: "a@example.test",
        template: "verify-email",
        data: verifyData,
        idempotencyKey: key,
      });
      const second = await email.enqueueEmail({
        to: "a@example.test",
        template: "verify-email",
        data: verifyData,
        idempotencyKey: key,
      });
      expect(second).toEqual({ id: first.id, status: "queued", duplicate: true });
    }));

  it("uses the tenant's template and scopes the send to the tenant", () =>
    withRollback(sdk, async () => {
      const tenant = await newTenant();
      await email.createTemplate({
        tenantId: tenant,
        input: { key: "welcome", subject: "Acme says hi, {{name}}", html: "<p>x</p>", text: "x" },
      });
      const result = await email.enqueueEmail({
        tenantId: tenant,
        to: "b@example.test",
        template: "welcome",
        data: { name: "Bo" },
      });
      const row = await sendRow(result.id);
      expect(row).toMatchObject({ tenantId: tenant, subject: "Acme says hi, Bo" });
      // Row-level security: outside the tenant the send is invisible.
      const outside = await sdk.withTenant(null, () =>
        sdk.router
          .db("email")
          .select()
          .from(emailSends)
          .where(and(eq(emailSends.id, result.id))),
      );
      expect(outside).toHaveLength(0);
    }));

  it("refuses an unknown template, bad data, or no recipient, writing nothing", () =>
    withRollback(sdk, async () => {
      await expect(email.enqueueEmail({ to: "a@example.test", template: "nope", data: {} })).rejects.toMatchObject({
        code: "TEMPLATE_UNKNOWN_KEY",
      });
      await expect(
        email.enqueueEmail({ to: "a@example.test", template: "verify-email", data: { name: "A" } }),
      ).rejects.toMatchObject({
        code: "TEMPLATE_DATA_INVALID",
      });
      await expect(
        email.enqueueEmail({ userId: randomUUID(), template: "verify-email", data: verifyData }),
      ).rejects.toMatchObject({
        code: "RECIPIENT_REQUIRED",
      });
      const templates = await sdk.router
        .db("email")
        .select()
        .from(emailTemplates)
        .where(eq(emailTemplates.key, "nope"));
      expect(templates).toHaveLength(0);
    }));
});
