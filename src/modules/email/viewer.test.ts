/**
 * The development mail viewer over HTTP, in-process: every request runs in the rolled-back test
 * transaction. Messages are recorded by the real development transport (enqueue, then dispatch).
 */
import { randomUUID } from "node:crypto";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { useTestSdk } from "../../../test/support.js";
import { withRollback } from "../../testing/rollback.js";
import { devMessages, type EmailModule, type EmailOptions } from "./index.js";
import { emailModuleWith } from "./testing/email-module.js";
import { createMailViewer } from "./viewer.js";

const { sdk } = useTestSdk();

function viewerApp(email: EmailModule) {
  const app = new Hono();
  app.route("/dev/mail", createMailViewer({ email }));
  return app;
}
const app = viewerApp(sdk.email);
const moduleWith = (options: EmailOptions) => emailModuleWith(sdk, options);

/** Enqueues a verify-email to a fresh address and lets the development transport record it. */
async function recordVerifyEmail(name = "Ada") {
  const to = `viewer-${randomUUID()}@example.test`;
  const url = `https://app.example.test/verify?token=${randomUUID()}&next=%2F`;
  const queued = await sdk.email.enqueueEmail({ to, template: "verify-email", data: { name, url } });
  await sdk.email.dispatchOnce();
  const [message] = await sdk.email.listDevMessages({ to });
  if (!message) throw new Error("the development transport recorded nothing");
  return { to, url, queued, message };
}

/** Records a message as the development transport would, with content no template would produce. */
async function recordRaw(values: { toAddress: string; subject: string; html: string; text: string; createdAt?: Date }) {
  const [row] = await sdk.router
    .db("email")
    .insert(devMessages)
    .values({ fromAddress: "sv-sdk <no-reply@localhost>", headers: { "X-Entity-Ref": "ref-1" }, ...values })
    .returning();
  return row!;
}

describe("mail viewer list", () => {
  it("lists recorded messages newest first with recipient, subject, template, time and a link to each", () =>
    withRollback(sdk, async () => {
      const to = `viewer-${randomUUID()}@example.test`;
      const older = await recordRaw({
        toAddress: to,
        subject: "Older one",
        html: "<p>1</p>",
        text: "1",
        createdAt: new Date(Date.now() - 60_000),
      });
      const newer = await recordRaw({ toAddress: to, subject: "Newer one", html: "<p>2</p>", text: "2" });
      const verify = await recordVerifyEmail();

      const res = await app.request(`/dev/mail?to=${encodeURIComponent(to)}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain("text/html");
      const html = await res.text();
      expect(html.indexOf("Newer one")).toBeGreaterThan(-1);
      expect(html.indexOf("Newer one")).toBeLessThan(html.indexOf("Older one"));
      expect(html).toContain(`<a href="/dev/mail/${newer.id}">Newer one</a>`);
      expect(html).toContain(`<a href="/dev/mail/${older.id}">Older one</a>`);
      expect(html).toContain(`<td>${to}</td>`);
      expect(html).toContain(`datetime="${newer.createdAt.toISOString()}"`);
      // The filter kept another recipient's message out.
      expect(html).not.toContain(verify.to);

      const all = await (await app.request("/dev/mail")).text();
      expect(all).toContain(`<a href="/dev/mail/${verify.message.id}">Verify your email address</a>`);
      expect(all).toContain("<code>verify-email</code>");
    }));

  it("escapes what a message carries (subject and recipient) in the list", () =>
    withRollback(sdk, async () => {
      const to = `viewer-${randomUUID()}@example.test`;
      await recordRaw({
        toAddress: to,
        subject: `<img src=x onerror="alert(1)"> & "quoted"`,
        html: "<p>x</p>",
        text: "x",
      });
      const html = await (await app.request(`/dev/mail?to=${encodeURIComponent(to)}`)).text();
      expect(html).toContain("&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; &quot;quoted&quot;");
      expect(html).not.toContain("<img");
    }));

  it("says so when nothing was recorded for a recipient", () =>
    withRollback(sdk, async () => {
      const res = await app.request(`/dev/mail?to=nobody-${randomUUID()}@example.test`);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain("No messages recorded for nobody-");
    }));
});

describe("mail viewer message", () => {
  it("shows headers, subject, the text part in <pre> with its link clickable, and the HTML part in a sandboxed srcdoc iframe", () =>
    withRollback(sdk, async () => {
      const { to, url, message } = await recordVerifyEmail();
      const res = await app.request(`/dev/mail/${message.id}`);
      expect(res.status).toBe(200);
      const html = await res.text();
      expect(html).toContain("<h1>Verify your email address</h1>");
      expect(html).toContain(`<dt>To</dt><dd>${to}</dd>`);
      expect(html).toContain("<dt>From</dt><dd>sv-sdk &lt;no-reply@localhost&gt;</dd>");
      expect(html).toContain("<dt>Template</dt><dd>verify-email</dd>");
      expect(html).toContain(`<dt>Send id</dt><dd>${message.sendId}</dd>`);
      expect(html).toContain('<a href="/dev/mail">← All messages</a>');

      const escapedUrl = url.replaceAll("&", "&amp;");
      expect(html).toMatch(/<pre>Hi Ada,[\s\S]*<\/pre>/);
      expect(html).toContain(`<a href="${escapedUrl}" rel="noreferrer">${escapedUrl}</a>`);

      const frame = /<iframe sandbox srcdoc="([^"]*)"/.exec(html);
      expect(frame, "a sandboxed iframe with srcdoc").not.toBeNull();
      // Unescaping the attribute gives back exactly the recorded HTML part.
      const unescaped = frame![1]!.replace(
        /&(amp|lt|gt|quot|#39);/g,
        (_, e: string) => ({ amp: "&", lt: "<", gt: ">", quot: '"', "#39": "'" })[e]!,
      );
      expect(unescaped).toBe(message.html);
    }));

  it("never puts the mail's HTML into the viewer's own page, and sends a restrictive content security policy", () =>
    withRollback(sdk, async () => {
      const hostile = `<script>parent.document.title="pwned"</script><img src=x onerror="alert(1)">"><iframe src="https://evil.test"></iframe>`;
      const row = await recordRaw({
        toAddress: `viewer-${randomUUID()}@example.test`,
        subject: "Hostile",
        html: hostile,
        text: "</pre><script>alert(2)</script>",
      });
      const res = await app.request(`/dev/mail/${row.id}`);
      expect(res.status).toBe(200);
      const html = await res.text();
      expect(html).not.toContain("<script");
      expect(html).not.toContain("<img");
      expect(html).not.toContain('src="https://evil.test"');
      expect(html.match(/<iframe /g)).toHaveLength(1);
      expect(html).toContain("<pre>&lt;/pre&gt;&lt;script&gt;alert(2)&lt;/script&gt;</pre>");
      expect(html).toContain("<dt>X-Entity-Ref</dt><dd>ref-1</dd>");
      expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
      expect(res.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
      expect(res.headers.get("cache-control")).toBe("no-store");
    }));

  it("answers an unknown or malformed id with a 404 page", () =>
    withRollback(sdk, async () => {
      for (const id of [randomUUID(), "not-a-uuid", "'; drop table x; --"]) {
        const res = await app.request(`/dev/mail/${encodeURIComponent(id)}`);
        expect(res.status, id).toBe(404);
        expect(await res.text()).toContain("No message with this id");
      }
    }));
});

describe("mail viewer availability", () => {
  it("is a 404 everywhere in production, with a Resend key, or without an explicit environment", () =>
    withRollback(sdk, async () => {
      const { message } = await recordVerifyEmail();
      const closed = [
        moduleWith({ environment: "production" }),
        moduleWith({
          resendApiKey: "re_x",
          unsubscribeSecret: "u".repeat(32),
          resendBaseUrl: "http://127.0.0.1:9",
          environment: "development",
        }),
        moduleWith({}),
      ];
      for (const email of closed) {
        expect(email.devMessagesOpen).toBe(false);
        const viewer = viewerApp(email);
        for (const path of ["/dev/mail", `/dev/mail/${message.id}`]) {
          const res = await viewer.request(path);
          expect(res.status, `${email.transport} ${path}`).toBe(404);
          expect(await res.text()).not.toContain("Verify your email address");
        }
      }
      const open = viewerApp(moduleWith({ environment: "development" }));
      expect((await open.request(`/dev/mail/${message.id}`)).status).toBe(200);
    }));
});
