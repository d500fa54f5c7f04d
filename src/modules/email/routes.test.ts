/**
 * `/api/v1/email` over HTTP: every request runs in the rolled-back test transaction. The routes are
 * mounted on a bare app whose test-only middleware sets the signed-in user and tenant from headers,
 * so these tests depend on the permissions module but not on sign-in.
 */
import { createHmac, randomBytes, randomUUID } from "node:crypto";
import { and, eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { json, useTestSdk } from "../../../test/support.js";
import { errorToProblem } from "../../http/problem.js";
import { createRoutes } from "../../http/routes.js";
import { silentLogger } from "../../logger.js";
import { withRollback } from "../../testing/rollback.js";
import { auditLogs } from "../audit/index.js";
import { organizations, users } from "../auth/index.js";
import { createEmailRoutes, type EmailModule, type EmailOptions } from "./index.js";
import { emailModuleWith } from "./testing/email-module.js";
import { emailEvents, emailPreferences, emailSends, suppressions } from "./schema.js";
import { startFakeResend } from "./testing/fake-resend.js";

const webhookSecret = `whsec_${randomBytes(24).toString("base64")}`;
const { sdk } = useTestSdk({ email: { webhookSecret, publicUrl: "https://app.example.test" } });

function appFor(email: EmailModule) {
  const app = createRoutes();
  // Test-only stand-in for the auth middleware.
  app.use("*", async (c, next) => {
    const userId = c.req.header("x-test-user");
    c.set("user", userId ? { id: userId, email: `${userId}@example.test`, name: "T", emailVerified: true } : null);
    const tenantId = c.req.header("x-test-tenant");
    c.set("tenant", tenantId ? { id: tenantId } : null);
    await next();
  });
  app.route("/api/v1/email", createEmailRoutes({ email, permissions: sdk.permissions }));
  app.onError((error, c) => errorToProblem(error, c, silentLogger));
  return app;
}
const app = appFor(sdk.email);
const moduleWith = (options: EmailOptions) => emailModuleWith(sdk, options);

async function newUser() {
  const id = randomUUID();
  await sdk.router
    .db("auth")
    .insert(users)
    .values({ id, name: "Ada", email: `ada-${id}@example.test` });
  return id;
}
async function newTenant() {
  const [org] = await sdk.router
    .db("auth")
    .insert(organizations)
    .values({ name: "Acme", slug: `acme-${randomUUID()}` })
    .returning();
  return org!.id;
}
/** A user holding the built-in `admin` role (email.templates:*) in a new tenant. */
async function tenantAdmin() {
  const [user, tenant] = [await newUser(), await newTenant()];
  await sdk.permissions.assignRole(user, "admin", { tenant });
  return { user, tenant, headers: { "x-test-user": user, "x-test-tenant": tenant } };
}
const auditOf = (targetId: string) =>
  sdk.withTenant("*", () => sdk.router.db("audit").select().from(auditLogs).where(eq(auditLogs.targetId, targetId)));

const template = { key: "welcome", subject: "Hi {{name}} from Acme", html: "<p>Hi {{name}}</p>", text: "Hi {{name}}" };

describe("templates routes", () => {
  it("lists the tenant's templates for a holder of email.templates:read; 401 signed out, 403 without the permission", () =>
    withRollback(sdk, async () => {
      const admin = await tenantAdmin();
      const res = await app.request("/api/v1/email/templates", { headers: admin.headers });
      expect(res.status).toBe(200);
      const { templates } = (await res.json()) as { templates: { key: string }[] };
      expect(templates.map((t) => t.key)).toContain("verify-email");

      expect((await app.request("/api/v1/email/templates")).status).toBe(401);
      const member = await newUser();
      const denied = await app.request("/api/v1/email/templates", {
        headers: { "x-test-user": member, "x-test-tenant": admin.tenant },
      });
      expect(denied.status).toBe(403);
      expect(await denied.json()).toMatchObject({ code: "PERMISSION_DENIED", permission: "email.templates:read" });
    }));

  it("creates, updates and deletes a tenant override, audited", () =>
    withRollback(sdk, async () => {
      const admin = await tenantAdmin();
      const created = await app.request("/api/v1/email/templates", json("POST", template, admin.headers));
      expect(created.status).toBe(201);
      const body = (await created.json()) as { id: string; tenantId: string; version: number };
      expect(body).toMatchObject({ tenantId: admin.tenant, version: 1 });

      const updated = await app.request(
        `/api/v1/email/templates/${body.id}`,
        json("PATCH", { subject: "Hello {{name}}" }, admin.headers),
      );
      expect(updated.status).toBe(200);
      expect(await updated.json()).toMatchObject({ subject: "Hello {{name}}", version: 2 });

      const deleted = await app.request(`/api/v1/email/templates/${body.id}`, {
        method: "DELETE",
        headers: admin.headers,
      });
      expect(deleted.status).toBe(204);
      expect((await auditOf(body.id)).map((e) => e.action).sort()).toEqual([
        "email.template_created",
        "email.template_deleted",
        "email.template_updated",
      ]);
    }));

  it("answers 400 naming the fields, 400 for undeclared variables and 409 for a duplicate", () =>
    withRollback(sdk, async () => {
      const admin = await tenantAdmin();
      const invalid = await app.request(
        "/api/v1/email/templates",
        json("POST", { key: "welcome", html: "x" }, admin.headers),
      );
      expect(invalid.status).toBe(400);
      const problem = (await invalid.json()) as { errors: { path: string }[] };
      expect(problem.errors.map((e) => e.path)).toEqual(expect.arrayContaining(["subject", "text"]));

      const undeclared = await app.request(
        "/api/v1/email/templates",
        json("POST", { ...template, subject: "{{nope}}" }, admin.headers),
      );
      expect(undeclared.status).toBe(400);
      expect(await undeclared.json()).toMatchObject({ code: "TEMPLATE_UNDECLARED_VARIABLE", undeclared: ["nope"] });

      expect((await app.request("/api/v1/email/templates", json("POST", template, admin.headers))).status).toBe(201);
      // In a savepoint that is rolled back, as the app's unit of work would for a 409.
      const duplicate = await withRollback(sdk, async () =>
        app.request("/api/v1/email/templates", json("POST", template, admin.headers)),
      );
      expect(duplicate.status).toBe(409);
    }));

  it("never shows, changes or deletes another tenant's override (404)", () =>
    withRollback(sdk, async () => {
      const a = await tenantAdmin();
      const b = await tenantAdmin();
      const created = (await (
        await app.request("/api/v1/email/templates", json("POST", template, a.headers))
      ).json()) as { id: string };
      expect((await app.request(`/api/v1/email/templates/${created.id}`, { headers: b.headers })).status).toBe(404);
      expect(
        (await app.request(`/api/v1/email/templates/${created.id}`, json("PATCH", { subject: "pwned" }, b.headers)))
          .status,
      ).toBe(404);
      expect(
        (await app.request(`/api/v1/email/templates/${created.id}`, { method: "DELETE", headers: b.headers })).status,
      ).toBe(404);
      // A tenant admin cannot edit the shared default either.
      const [verify] = await sdk.email.listTemplates({ key: "verify-email" });
      expect(
        (await app.request(`/api/v1/email/templates/${verify!.id}`, json("PATCH", { subject: "x" }, a.headers))).status,
      ).toBe(404);
      expect((await app.request(`/api/v1/email/templates/${created.id}`, { headers: a.headers })).status).toBe(200);
    }));

  it("previews a template with sample data, or refuses bad data with 400", () =>
    withRollback(sdk, async () => {
      const admin = await tenantAdmin();
      const res = await app.request(
        "/api/v1/email/templates/preview",
        json("POST", { key: "invitation" }, admin.headers),
      );
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ subject: "Grace Hopper invited you to Acme" });
      const unsaved = await app.request(
        "/api/v1/email/templates/preview",
        json(
          "POST",
          {
            key: "welcome",
            content: { subject: "Yo {{name}}", html: "<b>{{name}}</b>", text: "t" },
            data: { name: "<i>" },
          },
          admin.headers,
        ),
      );
      expect(await unsaved.json()).toMatchObject({ subject: "Yo <i>", html: "<b>&lt;i&gt;</b>" });
      const bad = await app.request(
        "/api/v1/email/templates/preview",
        json("POST", { key: "verify-email", data: { name: "x" } }, admin.headers),
      );
      expect(bad.status).toBe(400);
      expect(await bad.json()).toMatchObject({ code: "TEMPLATE_DATA_INVALID" });
      expect((await app.request("/api/v1/email/templates/preview", json("POST", { key: "welcome" }))).status).toBe(401);
    }));
});

describe("templates are Liquid, checked before they are stored", () => {
  const problemOf = async (res: Response) => {
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    return (await res.json()) as { code: string; errors: { path: string; message: string }[] };
  };

  it("previews unsaved Liquid with conditionals, loops and filters, escaping variables in the HTML", () =>
    withRollback(sdk, async () => {
      const admin = await tenantAdmin();
      const content = {
        subject: "{% if url %}Ready{% else %}Almost ready{% endif %}, {{ name | capitalize }}",
        html: "{% assign words = name | split: ' ' %}<p>{% for word in words %}[{{ word }}]{% endfor %}</p>",
        text: "{{ name | truncate: 5 }}",
      };
      const res = await app.request(
        "/api/v1/email/templates/preview",
        json("POST", { key: "welcome", content, data: { name: "ada <b>l</b>" } }, admin.headers),
      );
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({
        subject: "Almost ready, Ada <b>l</b>",
        html: "<p>[ada][&lt;b&gt;l&lt;/b&gt;]</p>",
        text: "ad...",
      });
    }));

  it("refuses a template that does not parse or reaches for a file (400 naming the part and line), on create and update", () =>
    withRollback(sdk, async () => {
      const admin = await tenantAdmin();
      const broken = await app.request(
        "/api/v1/email/templates",
        json("POST", { ...template, html: "<p>\n{% if name %}Hi" }, admin.headers),
      );
      expect(broken.status).toBe(400);
      expect(await problemOf(broken)).toMatchObject({
        code: "TEMPLATE_SYNTAX_INVALID",
        errors: [{ path: "html", message: expect.stringMatching(/not closed, line:2/) }],
      });

      const created = (await (
        await app.request("/api/v1/email/templates", json("POST", template, admin.headers))
      ).json()) as { id: string; version: number };
      const include = await app.request(
        `/api/v1/email/templates/${created.id}`,
        json("PATCH", { text: "{% include '/etc/passwd' %}" }, admin.headers),
      );
      expect(include.status).toBe(400);
      expect(await problemOf(include)).toMatchObject({
        code: "TEMPLATE_SYNTAX_INVALID",
        errors: [{ path: "text", message: expect.stringContaining("the include tag is not available") }],
      });
      const unchanged = await app.request(`/api/v1/email/templates/${created.id}`, { headers: admin.headers });
      expect(await unchanged.json()).toMatchObject({ text: template.text, version: 1 });
    }));

  it("refuses a template that would loop for minutes with the definition's sample data (422), answering quickly", () =>
    withRollback(sdk, async () => {
      const admin = await tenantAdmin();
      const started = Date.now();
      const looping =
        "{% for a in (1..500) %}{% for b in (1..500) %}{% for c in (1..500) %}{{ name }}{% endfor %}{% endfor %}{% endfor %}";
      const res = await app.request(
        "/api/v1/email/templates",
        json("POST", { ...template, html: looping }, admin.headers),
      );
      expect(res.status).toBe(422);
      expect(await problemOf(res)).toMatchObject({
        code: "TEMPLATE_RENDER_FAILED",
        errors: [{ path: "html", message: expect.stringMatching(/limit exceeded/) }],
      });
      expect(Date.now() - started).toBeLessThan(2_000);
    }));
});

describe("the subject is one header line", () => {
  it("sends a variable's CR/LF as a space: it never reaches the provider as a header", () =>
    withRollback(sdk, async () => {
      const fake = await startFakeResend();
      try {
        const email = moduleWith({
          resendApiKey: "re_test_key",
          unsubscribeSecret: "u".repeat(32),
          resendBaseUrl: fake.url,
        });
        const to = `r-${randomUUID()}@example.test`;
        const queued = await email.enqueueEmail({
          to,
          template: "welcome",
          data: { name: "Ada\r\nBcc: x@evil.test\r\n\r\n<b>hi</b>" },
        });
        const [row] = await sdk.router.db("email").select().from(emailSends).where(eq(emailSends.id, queued.id));
        expect(row!.subject).toBe("Welcome, Ada Bcc: x@evil.test <b>hi</b>");
        await email.dispatchOnce();
        // This test's message only: the dispatcher also sends what other files committed on the shared
        // database meanwhile (a verify-email of a test user, seen in the split topologies' runs).
        const sent = (
          fake.requests.flatMap((r) => (Array.isArray(r.body) ? r.body : [r.body])) as Record<string, unknown>[]
        ).filter((message) => message.to === to);
        expect(sent).toHaveLength(1);
        expect(sent[0]).toMatchObject({ to, subject: "Welcome, Ada Bcc: x@evil.test <b>hi</b>" });
        expect(Object.keys(sent[0]!).map((k) => k.toLowerCase())).not.toContain("bcc");
        expect(Object.keys((sent[0]!.headers ?? {}) as object).map((k) => k.toLowerCase())).not.toContain("bcc");
        // Only the bodies may carry line breaks; nothing that becomes a header line does.
        const headerValues = [
          sent[0]!.subject,
          sent[0]!.from,
          sent[0]!.to,
          ...Object.values((sent[0]!.headers ?? {}) as object),
        ];
        for (const value of headerValues) expect(String(value)).not.toMatch(/[\r\n]/);
        expect(fake.delivered.map((m) => m.to).filter((address) => address === to)).toEqual([to]);
      } finally {
        await fake.close();
      }
    }));

  it("refuses CR or LF in a stored subject with a 400 naming subject, through the API and the SDK", () =>
    withRollback(sdk, async () => {
      const admin = await tenantAdmin();
      const injected = { ...template, subject: "Hi {{name}}\r\nBcc: x@evil.test" };
      const created = await app.request("/api/v1/email/templates", json("POST", injected, admin.headers));
      expect(created.status).toBe(400);
      expect(created.headers.get("content-type")).toBe("application/problem+json");
      expect(await created.json()).toMatchObject({
        code: "VALIDATION_FAILED",
        errors: [{ path: "subject", message: expect.stringContaining("CR and LF") }],
      });

      const ok = (await (
        await app.request("/api/v1/email/templates", json("POST", template, admin.headers))
      ).json()) as { id: string };
      const updated = await app.request(
        `/api/v1/email/templates/${ok.id}`,
        json("PATCH", { subject: "Hi\nthere" }, admin.headers),
      );
      expect(updated.status).toBe(400);
      expect(await updated.json()).toMatchObject({ code: "VALIDATION_FAILED", errors: [{ path: "subject" }] });
      const preview = await app.request(
        "/api/v1/email/templates/preview",
        json("POST", { key: "welcome", content: { ...injected, key: undefined } }, admin.headers),
      );
      expect(preview.status).toBe(400);

      // The SDK verb refuses it too (no route in front of it).
      await expect(
        sdk.email.createTemplate({ tenantId: admin.tenant, input: { ...injected, locale: "fr" } }),
      ).rejects.toMatchObject({
        code: "VALIDATION_FAILED",
        details: { errors: [{ path: "subject", message: expect.stringContaining("CR and LF") }] },
      });
      await expect(
        sdk.email.updateTemplate({ tenantId: admin.tenant, id: ok.id, input: { subject: "a\rb" } }),
      ).rejects.toMatchObject({
        code: "VALIDATION_FAILED",
      });
    }));
});

function signed(body: string, options: { id?: string; timestamp?: number; secret?: string } = {}) {
  const id = options.id ?? `msg_${randomUUID()}`;
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const key = Buffer.from((options.secret ?? webhookSecret).slice("whsec_".length), "base64");
  const signature = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64");
  return {
    method: "POST",
    body,
    headers: {
      "content-type": "application/json",
      "svix-id": id,
      "svix-timestamp": String(timestamp),
      "svix-signature": `v1,${signature}`,
    },
  };
}

async function sentEmail(to = `r-${randomUUID()}@example.test`) {
  const providerId = randomUUID();
  const [row] = await sdk.router
    .db("email")
    .insert(emailSends)
    .values({
      toAddress: to,
      templateKey: "welcome",
      category: "product",
      subject: "s",
      html: "h",
      text: "t",
      status: "sent",
      providerMessageId: providerId,
    })
    .returning();
  return { id: row!.id, providerId, to };
}
const event = (type: string, providerId: string, to: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    type,
    created_at: new Date().toISOString(),
    data: { email_id: providerId, to: [to], subject: "s", from: "f", ...extra },
  });
const statusOf = async (id: string) =>
  (await sdk.router.db("email").select({ status: emailSends.status }).from(emailSends).where(eq(emailSends.id, id)))[0]!
    .status;

describe("Resend webhooks", () => {
  it("applies a signed event, audited, and ignores a replay of the same event id", () =>
    withRollback(sdk, async () => {
      const send = await sentEmail();
      const request = signed(event("email.delivered", send.providerId, send.to));
      const res = await app.request("/api/v1/email/webhooks/resend", request);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ outcome: "processed" });
      expect(await statusOf(send.id)).toBe("delivered");
      expect((await auditOf(send.id)).map((e) => e.action)).toEqual(["email.webhook_received"]);

      const replay = await app.request("/api/v1/email/webhooks/resend", request);
      expect(replay.status).toBe(200);
      expect(await replay.json()).toMatchObject({ outcome: "replayed" });
      const events = await sdk.router.db("email").select().from(emailEvents).where(eq(emailEvents.sendId, send.id));
      expect(events).toHaveLength(1);
      expect(await auditOf(send.id)).toHaveLength(1);
    }));

  it("answers 401 to a forged signature, a stale timestamp or missing headers, changing nothing", () =>
    withRollback(sdk, async () => {
      const send = await sentEmail();
      const body = event("email.delivered", send.providerId, send.to);
      const forged = signed(body, { secret: `whsec_${randomBytes(24).toString("base64")}` });
      const stale = signed(body, { timestamp: Math.floor(Date.now() / 1000) - 600 });
      const tampered = { ...signed(body), body: body.replace("delivered", "complained") };
      for (const request of [forged, stale, tampered, { method: "POST", body }]) {
        const res = await app.request("/api/v1/email/webhooks/resend", request);
        expect(res.status).toBe(401);
        expect(await res.json()).toMatchObject({ code: "WEBHOOK_SIGNATURE_INVALID" });
      }
      expect(await statusOf(send.id)).toBe("sent");
    }));

  it("suppresses a hard-bounced or complaining address, and later mail to it is skipped", () =>
    withRollback(sdk, async () => {
      const bounced = await sentEmail();
      const complained = await sentEmail();
      const soft = await sentEmail();
      await app.request(
        "/api/v1/email/webhooks/resend",
        signed(
          event("email.bounced", bounced.providerId, bounced.to, {
            bounce: { type: "Permanent", subType: "General", message: "x" },
          }),
        ),
      );
      await app.request(
        "/api/v1/email/webhooks/resend",
        signed(event("email.complained", complained.providerId, complained.to)),
      );
      await app.request(
        "/api/v1/email/webhooks/resend",
        signed(
          event("email.bounced", soft.providerId, soft.to, {
            bounce: { type: "Transient", subType: "MailboxFull", message: "x" },
          }),
        ),
      );
      expect(await statusOf(bounced.id)).toBe("bounced");
      expect(await statusOf(complained.id)).toBe("complained");
      const listed = await sdk.router.db("email").select().from(suppressions);
      expect(listed.map((s) => s.email)).toEqual(expect.arrayContaining([bounced.to, complained.to]));
      expect(listed.map((s) => s.email)).not.toContain(soft.to);
      expect((await auditOf(bounced.id)).map((e) => e.action).sort()).toEqual([
        "email.suppressed",
        "email.webhook_received",
      ]);
      const next = await sdk.email.enqueueEmail({ to: bounced.to, template: "welcome", data: { name: "A" } });
      expect(next).toMatchObject({ status: "skipped", skipReason: "suppressed" });
    }));

  it("never moves a send backwards (a late delivered after opened)", () =>
    withRollback(sdk, async () => {
      const send = await sentEmail();
      await app.request("/api/v1/email/webhooks/resend", signed(event("email.opened", send.providerId, send.to)));
      await app.request("/api/v1/email/webhooks/resend", signed(event("email.delivered", send.providerId, send.to)));
      expect(await statusOf(send.id)).toBe("opened");
    }));

  it("answers 503 when no webhook secret is configured", async () => {
    const unconfigured = appFor(moduleWith({}));
    const res = await unconfigured.request(
      "/api/v1/email/webhooks/resend",
      signed(event("email.sent", "x", "a@example.test")),
    );
    expect(res.status).toBe(503);
  });
});

describe("preferences and one-click unsubscribe", () => {
  it("reads and changes the signed-in user's preferences, audited; account mail cannot be opted out of", () =>
    withRollback(sdk, async () => {
      const user = await newUser();
      const headers = { "x-test-user": user };
      const read = await app.request("/api/v1/email/preferences", { headers });
      expect(read.status).toBe(200);
      expect((await read.json()) as unknown).toMatchObject({
        preferences: expect.arrayContaining([
          { category: "account", optedOut: false, optional: false },
          { category: "marketing", optedOut: false, optional: true },
        ]),
      });
      const put = await app.request(
        "/api/v1/email/preferences",
        json("PUT", { preferences: [{ category: "marketing", optedOut: true }] }, headers),
      );
      expect(put.status).toBe(200);
      expect(await put.json()).toMatchObject({
        preferences: expect.arrayContaining([{ category: "marketing", optedOut: true, optional: true }]),
      });
      expect((await auditOf(user)).map((e) => e.action)).toEqual(["email.preferences_updated"]);

      const refused = await app.request(
        "/api/v1/email/preferences",
        json("PUT", { preferences: [{ category: "security", optedOut: true }] }, headers),
      );
      expect(refused.status).toBe(400);
      expect(await refused.json()).toMatchObject({ code: "CATEGORY_NOT_OPTIONAL" });
      expect((await app.request("/api/v1/email/preferences")).status).toBe(401);
      expect((await app.request("/api/v1/email/preferences", json("PUT", { preferences: [] }))).status).toBe(401);
    }));

  it("unsubscribes with the List-Unsubscribe link of a message, without a session, and later mail is skipped", () =>
    withRollback(sdk, async () => {
      const user = await newUser();
      const queued = await sdk.email.enqueueEmail({ userId: user, template: "welcome", data: { name: "Ada" } });
      const [row] = await sdk.router.db("email").select().from(emailSends).where(eq(emailSends.id, queued.id));
      const link = row!.headers!["List-Unsubscribe"]!.slice(1, -1);
      const path = new URL(link).pathname + new URL(link).search;
      const init = {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "List-Unsubscribe=One-Click",
      };
      const res = await app.request(path, init);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ unsubscribed: true, category: "product" });
      expect((await app.request(path, init)).status).toBe(200);
      const prefs = await sdk.router
        .db("email")
        .select()
        .from(emailPreferences)
        .where(and(eq(emailPreferences.userId, user), eq(emailPreferences.category, "product")));
      expect(prefs[0]!.optedOut).toBe(true);
      expect((await auditOf(user)).map((e) => e.action)).toEqual(["email.unsubscribed"]);
      expect(await sdk.email.enqueueEmail({ userId: user, template: "welcome", data: { name: "Ada" } })).toMatchObject({
        skipReason: "opted_out",
      });
    }));

  it("refuses a forged or altered token, and a token for account mail (400)", () =>
    withRollback(sdk, async () => {
      const user = await newUser();
      const good = sdk.email.createUnsubscribeToken(user, "marketing");
      const [payload] = good.split(".");
      const otherUser = Buffer.from(JSON.stringify({ u: randomUUID(), c: "marketing" })).toString("base64url");
      const forgedSecret = moduleWith({ unsubscribeSecret: "x".repeat(40) }).createUnsubscribeToken(user, "marketing");
      for (const token of [
        `${otherUser}.${good.split(".")[1]}`,
        `${payload}.AAAA`,
        forgedSecret,
        sdk.email.createUnsubscribeToken(user, "account"),
      ]) {
        const res = await app.request(`/api/v1/email/unsubscribe?token=${token}`, { method: "POST" });
        expect(res.status).toBe(400);
        expect(await res.json()).toMatchObject({ code: "UNSUBSCRIBE_TOKEN_INVALID" });
      }
      expect(
        await sdk.router.db("email").select().from(emailPreferences).where(eq(emailPreferences.userId, user)),
      ).toHaveLength(0);
    }));
});

describe("development messages", () => {
  it("are readable with the platform permission, or openly outside production; 404 with a Resend key", () =>
    withRollback(sdk, async () => {
      const queued = await sdk.email.enqueueEmail({
        to: "dev-route@example.test",
        template: "verify-email",
        data: { name: "A", url: "https://x.test/v" },
      });
      await sdk.email.dispatchOnce();
      // Production-like: the development transport's messages need the platform permission.
      const guarded = appFor(moduleWith({ environment: "production" }));
      expect((await guarded.request("/api/v1/email/dev/messages")).status).toBe(401);
      const member = await newUser();
      expect((await guarded.request("/api/v1/email/dev/messages", { headers: { "x-test-user": member } })).status).toBe(
        403,
      );
      const platformOwner = await newUser();
      await sdk.permissions.assignRole(platformOwner, "owner");
      const list = await guarded.request("/api/v1/email/dev/messages?to=dev-route@example.test", {
        headers: { "x-test-user": platformOwner },
      });
      expect(list.status).toBe(200);
      const { messages } = (await list.json()) as { messages: { id: string; sendId: string }[] };
      expect(messages[0]!.sendId).toBe(queued.id);
      const one = await guarded.request(`/api/v1/email/dev/messages/${messages[0]!.id}`, {
        headers: { "x-test-user": platformOwner },
      });
      expect(one.status).toBe(200);

      const open = appFor(moduleWith({ environment: "development" }));
      expect((await open.request("/api/v1/email/dev/messages")).status).toBe(200);
      const production = appFor(moduleWith({ environment: "production" }));
      expect((await production.request("/api/v1/email/dev/messages")).status).toBe(401);
      const withKey = appFor(
        moduleWith({ resendApiKey: "re_x", unsubscribeSecret: "u".repeat(32), resendBaseUrl: "http://127.0.0.1:9" }),
      );
      expect((await withKey.request("/api/v1/email/dev/messages")).status).toBe(404);
    }));
});
