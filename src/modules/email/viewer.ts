/**
 * `/dev/mail`: the development mail viewer. With the development transport (no Resend key) and an
 * environment that is explicitly not production, it lists the messages the transport recorded and
 * shows each one. Anywhere else every path is a 404, so a production deployment never serves it.
 *
 * A recorded message's HTML is untrusted (template overrides are tenant-editable): it is shown only
 * inside a sandboxed iframe (no scripts, an opaque origin, no top navigation), given as an
 * attribute-escaped `srcdoc`, and never written into the viewer's own page.
 */
import type { Context } from "hono";
import { createRoutes, escapeHtml } from "../../http/kit/index.js";
import type { EmailModule } from "./api.js";
import { UUID } from "../../uuid.js";

export interface MailViewerOptions {
  email: Pick<EmailModule, "devMessagesOpen" | "listDevMessages" | "getDevMessage" | "getSend">;
}

/** The module's error code of `error`, if it carries one. */
const codeOf = (error: unknown) => (error as { code?: unknown } | undefined)?.code;

type DevMessage = Awaited<ReturnType<EmailModule["getDevMessage"]>>;

// One send lookup per listed message (for its template): fine for a development page of this size.
const LIST_LIMIT = 50;

// The srcdoc frame inherits this policy: the mail may style itself and show images, nothing more.
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const STYLE = `
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;padding:1rem 2rem;max-width:1100px;color:#1d2330}
a{color:#1f5fbf}h1{font-size:1.4rem;margin:.5rem 0 1rem}h2{font-size:1.05rem;margin:1.5rem 0 .5rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #dde1e6;vertical-align:top}
th{background:#f4f5f7;font-weight:600}tr:hover td{background:#fafbfc}
.muted{color:#5c6370}.empty{padding:2rem;text-align:center;color:#5c6370;border:1px dashed #dde1e6;border-radius:6px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}dt{font-weight:600}dd{margin:0;word-break:break-all}
pre{background:#f4f5f7;padding:.75rem;overflow:auto;white-space:pre-wrap;border-radius:4px}
iframe{width:100%;height:70vh;border:1px solid #dde1e6;border-radius:4px;background:#fff;resize:vertical}
form{margin:0 0 1rem}input{font:inherit;padding:.2rem .4rem}
`;

const formatTime = (date: Date) => `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
const time = (date: Date) => `<time datetime="${date.toISOString()}">${formatTime(date)}</time>`;

/** The text part, escaped, with its http(s) URLs made clickable (verification and reset links). */
function linkify(text: string): string {
  return escapeHtml(text).replace(
    /https?:\/\/(?:(?!&quot;|&#39;|&lt;|&gt;)\S)+/g,
    (url) => `<a href="${url}" rel="noreferrer">${url}</a>`,
  );
}

function page(c: Context, status: 200 | 404, title: string, body: string) {
  c.header("content-security-policy", CONTENT_SECURITY_POLICY);
  c.header("cache-control", "no-store"); // messages hold live sign-in and reset links
  c.header("referrer-policy", "no-referrer");
  c.header("x-content-type-options", "nosniff");
  return c.html(
    `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} — sv-sdk mail</title><style>${STYLE}</style></head>
<body>${body}</body></html>`,
    status,
  );
}

/** The template key of a message's send, or null (no send, or the send is gone). */
async function templateOf(email: MailViewerOptions["email"], message: DevMessage): Promise<string | null> {
  if (!message.sendId) return null;
  try {
    return (await email.getSend(message.sendId)).templateKey;
  } catch (error) {
    if (codeOf(error) === "SEND_NOT_FOUND") return null;
    throw error;
  }
}

function listPage(
  c: Context,
  base: string,
  rows: { message: DevMessage; template: string | null }[],
  to: string | undefined,
) {
  const filter = `<form method="get" action="${escapeHtml(base)}"><label>To <input type="email" name="to" value="${escapeHtml(to ?? "")}"></label> <button>Filter</button>${to ? ` <a href="${escapeHtml(base)}">Show all</a>` : ""}</form>`;
  const table = rows.length
    ? `<table><thead><tr><th>Time</th><th>To</th><th>Subject</th><th>Template</th></tr></thead><tbody>${rows
        .map(
          ({ message, template }) =>
            `<tr><td class="muted">${time(message.createdAt)}</td><td>${escapeHtml(message.toAddress)}</td>` +
            `<td><a href="${escapeHtml(`${base}/${message.id}`)}">${escapeHtml(message.subject)}</a></td>` +
            `<td>${template ? `<code>${escapeHtml(template)}</code>` : `<span class="muted">—</span>`}</td></tr>`,
        )
        .join("")}</tbody></table>`
    : `<p class="empty">No messages recorded${to ? ` for ${escapeHtml(to)}` : ""} yet. Mail the SDK sends appears here.</p>`;
  return page(
    c,
    200,
    "Development mail",
    `<h1>Development mail</h1><p class="muted">Messages the development transport recorded instead of sending, newest first (at most ${LIST_LIMIT}).</p>${filter}${table}`,
  );
}

function messagePage(c: Context, back: string, message: DevMessage, template: string | null) {
  const fields: [string, string][] = [
    ["From", message.fromAddress],
    ["To", message.toAddress],
    ["Subject", message.subject],
    ["Template", template ?? "—"],
    ["Send id", message.sendId ?? "—"],
    ...Object.entries(message.headers ?? {}),
  ];
  const headers = fields.map(([name, value]) => `<dt>${escapeHtml(name)}</dt><dd>${escapeHtml(value)}</dd>`).join("");
  return page(
    c,
    200,
    message.subject,
    `<p><a href="${escapeHtml(back)}">← All messages</a></p>
<h1>${escapeHtml(message.subject)}</h1>
<dl><dt>Date</dt><dd>${time(message.createdAt)}</dd>${headers}</dl>
<h2>HTML part</h2>
<iframe sandbox srcdoc="${escapeHtml(message.html)}" title="HTML part of the message" referrerpolicy="no-referrer"></iframe>
<h2>Text part</h2>
<pre>${linkify(message.text)}</pre>`,
  );
}

function notFoundPage(c: Context, back: string) {
  return page(
    c,
    404,
    "Not found",
    `<p><a href="${escapeHtml(back)}">← All messages</a></p><h1>No message with this id</h1>`,
  );
}

/**
 * The development mail viewer, to mount at `/dev/mail`. Every path answers 404 unless the email
 * module's development messages are open (development transport, environment not production).
 *
 * @example
 * if (sdk.email.devMessagesOpen) app.route("/dev/mail", createMailViewer({ email: sdk.email }));
 */
export function createMailViewer({ email }: MailViewerOptions) {
  const app = createRoutes();
  app.use("*", async (c, next) => {
    if (!email.devMessagesOpen) return c.notFound();
    await next();
  });

  app.get("/", async (c) => {
    const to = c.req.query("to")?.trim() || undefined;
    const messages = await email.listDevMessages({ limit: LIST_LIMIT, to });
    const rows = await Promise.all(
      messages.map(async (message) => ({ message, template: await templateOf(email, message) })),
    );
    return listPage(c, c.req.path.replace(/\/$/, ""), rows, to);
  });

  app.get("/:id", async (c) => {
    const id = c.req.param("id");
    const back = c.req.path.slice(0, c.req.path.lastIndexOf("/")) || "/";
    if (!UUID.test(id)) return notFoundPage(c, back);
    let message: DevMessage;
    try {
      message = await email.getDevMessage(id);
    } catch (error) {
      if (codeOf(error) === "DEV_MESSAGE_NOT_FOUND") return notFoundPage(c, back);
      throw error;
    }
    return messagePage(c, back, message, await templateOf(email, message));
  });

  return app;
}
