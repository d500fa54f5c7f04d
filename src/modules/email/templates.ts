/**
 * Template definitions and rendering. A definition (in code) declares a template's key, category and
 * variables as a zod object; the database holds its content (subject, HTML, text) per locale, a shipped
 * default with `tenant_id` null and optional per-tenant overrides. Variables are `{{name}}`
 * placeholders: HTML-escaped in the HTML body, CR/LF-stripped in the subject (no header injection).
 */
import { z } from "zod";
import { EmailErrors } from "./errors.js";

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** Categories a user can never opt out of: they carry sign-in, recovery and security information. */
export const MANDATORY_CATEGORIES = ["account", "security"] as const;
/** Categories a user may opt out of (one-click unsubscribe, preferences). */
export const OPTIONAL_CATEGORIES = ["product", "marketing", "digest"] as const;

export const isMandatoryCategory = (category: string) =>
  (MANDATORY_CATEGORIES as readonly string[]).includes(category);

export interface TemplateContent {
  subject: string;
  html: string;
  text: string;
}

export interface EmailTemplateDefinition {
  key: string;
  /** The category mail of this template is sent in unless the caller says otherwise. */
  category: string;
  /** The variables; unknown keys are rejected, so a typo fails loudly instead of rendering blank. */
  variables: z.ZodObject<z.ZodRawShape>;
  /** Data the preview renders with. */
  sample: Record<string, unknown>;
  /** The content seeded as the default (locale `en`). */
  defaults: TemplateContent;
}

/**
 * Declares a template: its variables, sample data and default content.
 *
 * @example
 * const receipt = defineEmailTemplate({
 *   key: "receipt", category: "account",
 *   variables: z.object({ name: z.string(), total: z.string() }),
 *   sample: { name: "Ada", total: "€12.00" },
 *   defaults: { subject: "Your receipt", html: "<p>Hi {{name}}, you paid {{total}}.</p>", text: "Hi {{name}}, you paid {{total}}." },
 * });
 * createSdk({ databaseUrl, email: { templates: [receipt] } });
 */
export function defineEmailTemplate(definition: EmailTemplateDefinition): EmailTemplateDefinition {
  const undeclared = undeclaredVariables(definition.defaults, definition.variables);
  if (undeclared.length > 0) {
    throw new Error(`Email template '${definition.key}' uses undeclared variables: ${undeclared.join(", ")}`);
  }
  return definition;
}

/** Only http(s) links: a `javascript:` URL in an href would run in some mail clients' web views. */
const link = () => z.url({ protocol: /^https?$/ });

const layout = (body: string) =>
  `<!doctype html><html><body style="font-family:system-ui,sans-serif;line-height:1.5;color:#111">${body}</body></html>`;

export const DEFAULT_TEMPLATES: readonly EmailTemplateDefinition[] = [
  defineEmailTemplate({
    key: "verify-email",
    category: "account",
    variables: z.strictObject({ name: z.string().min(1).max(200), url: link() }),
    sample: { name: "Ada Lovelace", url: "https://app.example.test/verify?token=sample" },
    defaults: {
      subject: "Verify your email address",
      html: layout(
        `<p>Hi {{name}},</p><p>Confirm your email address to finish signing up:</p><p><a href="{{url}}">Verify email</a></p><p>If you did not sign up, ignore this message.</p>`,
      ),
      text: "Hi {{name}},\n\nConfirm your email address to finish signing up:\n{{url}}\n\nIf you did not sign up, ignore this message.\n",
    },
  }),
  defineEmailTemplate({
    key: "reset-password",
    category: "account",
    variables: z.strictObject({ name: z.string().min(1).max(200), url: link() }),
    sample: { name: "Ada Lovelace", url: "https://app.example.test/reset?token=sample" },
    defaults: {
      subject: "Reset your password",
      html: layout(
        `<p>Hi {{name}},</p><p>Someone asked to reset your password. If it was you, choose a new one:</p><p><a href="{{url}}">Reset password</a></p><p>If it was not you, ignore this message; your password is unchanged.</p>`,
      ),
      text: "Hi {{name}},\n\nSomeone asked to reset your password. If it was you, choose a new one:\n{{url}}\n\nIf it was not you, ignore this message; your password is unchanged.\n",
    },
  }),
  defineEmailTemplate({
    key: "invitation",
    // Account mail: an organization admin asked for it, and the recipient often has no account yet
    // that could hold a preference. Suppression (bounces, complaints) still applies.
    category: "account",
    variables: z.strictObject({
      inviterName: z.string().min(1).max(200),
      organizationName: z.string().min(1).max(200),
      url: link(),
    }),
    sample: { inviterName: "Grace Hopper", organizationName: "Acme", url: "https://app.example.test/invite?id=sample" },
    defaults: {
      subject: "{{inviterName}} invited you to {{organizationName}}",
      html: layout(
        `<p>{{inviterName}} invited you to join <strong>{{organizationName}}</strong>.</p><p><a href="{{url}}">Accept the invitation</a></p>`,
      ),
      text: "{{inviterName}} invited you to join {{organizationName}}.\n\nAccept the invitation:\n{{url}}\n",
    },
  }),
  defineEmailTemplate({
    key: "welcome",
    // Product mail: nice to have, so the user may opt out (and gets List-Unsubscribe).
    category: "product",
    variables: z.strictObject({ name: z.string().min(1).max(200), url: link().optional() }),
    sample: { name: "Ada Lovelace", url: "https://app.example.test/" },
    defaults: {
      subject: "Welcome, {{name}}",
      html: layout(`<p>Welcome, {{name}}!</p><p>Your account is ready: <a href="{{url}}">{{url}}</a></p>`),
      text: "Welcome, {{name}}!\n\nYour account is ready: {{url}}\n",
    },
  }),
  defineEmailTemplate({
    key: "security-notice",
    category: "security",
    variables: z.strictObject({
      name: z.string().min(1).max(200),
      event: z.string().min(1).max(500),
      details: z.string().max(2000).optional(),
    }),
    sample: { name: "Ada Lovelace", event: "A new device signed in to your account", details: "Firefox on Linux, 203.0.113.7" },
    defaults: {
      subject: "Security notice: {{event}}",
      html: layout(
        `<p>Hi {{name}},</p><p><strong>{{event}}</strong></p><p>{{details}}</p><p>If this was not you, change your password now.</p>`,
      ),
      text: "Hi {{name}},\n\n{{event}}\n{{details}}\n\nIf this was not you, change your password now.\n",
    },
  }),
];

/** The variable names a piece of content uses. */
export function placeholders(content: TemplateContent): string[] {
  const names = new Set<string>();
  for (const part of [content.subject, content.html, content.text]) {
    for (const match of part.matchAll(PLACEHOLDER)) names.add(match[1]!);
  }
  return [...names];
}

/** Placeholders the definition does not declare (a typo would otherwise render as blank). */
export function undeclaredVariables(content: TemplateContent, variables: z.ZodObject<z.ZodRawShape>): string[] {
  const declared = new Set(Object.keys(variables.shape));
  return placeholders(content).filter((name) => !declared.has(name));
}

export function escapeHtml(value: string): string {
  return value
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

const display = (value: unknown) => (value === undefined || value === null ? "" : String(value));

/**
 * Validates `data` against the definition and renders the content.
 *
 * @example
 * const { subject, html } = renderContent(definition, content, { name: "Ada", url: "https://…" });
 */
export function renderContent(
  definition: EmailTemplateDefinition,
  content: TemplateContent,
  data: unknown,
): TemplateContent {
  const parsed = definition.variables.safeParse(data ?? {});
  if (!parsed.success) {
    throw EmailErrors.TEMPLATE_DATA_INVALID({
      template: definition.key,
      errors: parsed.error.issues.map((i) => ({ path: i.path.join(".") || "(root)", message: i.message })),
    });
  }
  const values = parsed.data as Record<string, unknown>;
  const fill = (template: string, encode: (value: string) => string) =>
    template.replace(PLACEHOLDER, (_, name: string) => encode(display(values[name])));
  return {
    subject: fill(content.subject, (v) => v.replace(/[\r\n]+/g, " ")).trim(),
    html: fill(content.html, escapeHtml),
    text: fill(content.text, (v) => v),
  };
}
