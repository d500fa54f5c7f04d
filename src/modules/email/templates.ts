/**
 * Template definitions and rendering. A definition (in code) declares a template's key, category and
 * variables as a zod object; the database holds its content (subject, HTML, text) per locale, a shipped
 * default with `tenant_id` null and optional per-tenant overrides. Content is Liquid (`render.ts`):
 * `{{ name }}`, `{% if %}`, `{% for %}`, filters; variables are HTML-escaped in the HTML body and the
 * subject is kept to one line (no header injection). A `{{name}}` template written for the regex
 * renderer this replaced renders exactly as it did.
 */
import { z } from "zod";
import { AppError, CommonErrors } from "../../errors.js";
import { EmailErrors } from "./errors.js";
import {
  compileContent,
  RENDER_LIMITS,
  renderParts,
  subjectProblem,
  variablesOf,
  type CompiledContent,
  type TemplateContent,
} from "./render.js";

export type { TemplateContent } from "./render.js";

/** Categories a user can never opt out of: they carry sign-in, recovery and security information. */
export const MANDATORY_CATEGORIES = ["account", "security"] as const;
/** Categories a user may opt out of (one-click unsubscribe, preferences). */
export const OPTIONAL_CATEGORIES = ["product", "marketing", "digest"] as const;

export const isMandatoryCategory = (category: string) => (MANDATORY_CATEGORIES as readonly string[]).includes(category);

export interface EmailTemplateDefinition {
  key: string;
  /** The category mail of this template is sent in unless the caller says otherwise. */
  category: string;
  /** The variables; unknown keys are rejected, so a typo fails loudly instead of rendering blank. */
  variables: z.ZodObject<z.ZodRawShape>;
  /** Data the preview renders with, and every new content is tried with before it is stored. */
  sample: Record<string, unknown>;
  /** The content seeded as the default (locale `en`). */
  defaults: TemplateContent;
}

/**
 * The render budget of a template's default content, checked once at import. The message budget
 * (RENDER_LIMITS.renderMs) bounds content an API caller sends; defaults are the application's own
 * code, and their first render runs cold: on a loaded machine it took more than 200 ms, and the
 * process failed to start.
 */
const DEFAULTS_RENDER_MS = 10_000;

/**
 * Declares a template: its variables, sample data and default content. Content that would be
 * refused through the API (a syntax error, an undeclared variable, a subject on two lines, a render
 * of the sample that fails) fails here, at startup.
 *
 * @example
 * const receipt = defineEmailTemplate({
 *   key: "receipt", category: "account",
 *   variables: z.object({ name: z.string(), items: z.array(z.object({ label: z.string(), price: z.string() })) }),
 *   sample: { name: "Ada", items: [{ label: "Tea", price: "€3.00" }] },
 *   defaults: {
 *     subject: "Your receipt",
 *     html: "<p>Hi {{ name }},</p><ul>{% for item in items %}<li>{{ item.label }}: {{ item.price }}</li>{% endfor %}</ul>",
 *     text: "Hi {{ name }},\n{% for item in items %}- {{ item.label }}: {{ item.price }}\n{% endfor %}",
 *   },
 * });
 * createSdk({ databaseUrl, email: { templates: [receipt] } });
 */
export function defineEmailTemplate(definition: EmailTemplateDefinition): EmailTemplateDefinition {
  try {
    checkTemplateContent(definition, definition.defaults, DEFAULTS_RENDER_MS);
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    throw new Error(
      `Email template '${definition.key}' has default content that cannot be used (${error.code}): ${JSON.stringify(error.details)}`,
    );
  }
  return definition;
}

/** The variable names a piece of content reads. */
export function placeholders(content: TemplateContent): string[] {
  return variablesOf(compileContent(content));
}

/** Variables the content reads that the definition does not declare (a typo would otherwise fail every send). */
export function undeclaredVariables(content: TemplateContent, variables: z.ZodObject<z.ZodRawShape>): string[] {
  const declared = new Set(Object.keys(variables.shape));
  return placeholders(content).filter((name) => !declared.has(name));
}

/**
 * Everything that makes content unusable, refused before it is stored (each a 400 or 422 naming the
 * part): CR/LF in the subject, invalid Liquid, variables the definition does not declare, and a
 * render of the definition's sample data that fails or runs out of its limits.
 *
 * @example
 * checkTemplateContent(definition, { subject: "Hi {{ name }}", html: "<p>{{ name }}</p>", text: "{{ name }}" });
 */
export function checkTemplateContent(
  definition: EmailTemplateDefinition,
  content: TemplateContent,
  renderMs: number = RENDER_LIMITS.renderMs,
): CompiledContent {
  const subject = subjectProblem(content.subject);
  if (subject) throw CommonErrors.VALIDATION_FAILED({ errors: [subject] });
  const compiled = compileContent(content);
  const declared = Object.keys(definition.variables.shape);
  const undeclared = variablesOf(compiled).filter((name) => !declared.includes(name));
  if (undeclared.length > 0) {
    throw EmailErrors.TEMPLATE_UNDECLARED_VARIABLE({ key: definition.key, undeclared, declared });
  }
  renderParts(compiled, valuesFor(definition, validData(definition, definition.sample)), renderMs);
  return compiled;
}

function validData(definition: EmailTemplateDefinition, data: unknown): Record<string, unknown> {
  const parsed = definition.variables.safeParse(data ?? {});
  if (!parsed.success) {
    throw EmailErrors.TEMPLATE_DATA_INVALID({
      template: definition.key,
      errors: parsed.error.issues.map((i) => ({ path: i.path.join(".") || "(root)", message: i.message })),
    });
  }
  return parsed.data as Record<string, unknown>;
}

/**
 * Every declared variable is in scope, null when the data leaves it out: an optional variable prints
 * as nothing and tests false in `{% if %}`, while a name no definition declares is still an error.
 */
function valuesFor(definition: EmailTemplateDefinition, data: Record<string, unknown>): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const name of Object.keys(definition.variables.shape)) values[name] = data[name] ?? null;
  return values;
}

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
  const values = valuesFor(definition, validData(definition, data));
  let compiled: CompiledContent;
  try {
    compiled = compileContent(content);
  } catch (error) {
    // Stored content that no longer parses (written before templates were checked as Liquid) is the
    // template's fault, not the caller's.
    if (error instanceof AppError && error.code === "TEMPLATE_SYNTAX_INVALID")
      throw EmailErrors.TEMPLATE_RENDER_FAILED(error.details);
    throw error;
  }
  return renderParts(compiled, values);
}

/** Only http(s) links: a `javascript:` URL in an href would run in some mail clients' web views. */
const link = () => z.url({ protocol: /^https?$/ });

const FONT = "font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif";

/**
 * The shipped defaults' HTML: one centred column, at most 600 px wide and the full width of a phone,
 * laid out with tables and inline styles because that is what mail clients render alike (no
 * stylesheet, web font or image to fetch).
 */
function layout(body: string): string {
  return [
    `<!doctype html>`,
    `<html lang="en">`,
    `<head>`,
    `<meta charset="utf-8">`,
    `<meta name="viewport" content="width=device-width, initial-scale=1">`,
    `<meta name="x-apple-disable-message-reformatting">`,
    `<meta name="color-scheme" content="light">`,
    `</head>`,
    `<body style="margin:0;padding:0;width:100%;background-color:#f4f4f5;">`,
    `<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="width:100%;background-color:#f4f4f5;">`,
    `<tr><td align="center" style="padding:24px 12px;">`,
    `<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="width:100%;max-width:600px;background-color:#ffffff;border:1px solid #e4e4e7;border-radius:8px;">`,
    `<tr><td style="padding:32px 24px;${FONT};font-size:16px;line-height:1.5;color:#111111;text-align:left;word-break:break-word;">`,
    body,
    `</td></tr>`,
    `</table>`,
    `</td></tr>`,
    `</table>`,
    `</body>`,
    `</html>`,
  ].join("\n");
}

const paragraph = (html: string) => `<p style="margin:0 0 16px;">${html}</p>`;

/** A link drawn as a button, large enough to tap; the whole cell is the target in most clients. */
const button = (href: string, label: string) =>
  `<table role="presentation" cellpadding="0" cellspacing="0" border="0" style="margin:8px 0 24px;"><tr>` +
  `<td align="center" bgcolor="#111111" style="border-radius:6px;background-color:#111111;">` +
  `<a href="${href}" style="display:inline-block;padding:12px 24px;${FONT};font-size:16px;font-weight:600;line-height:1.25;color:#ffffff;text-decoration:none;border-radius:6px;">${label}</a>` +
  `</td></tr></table>`;

const inlineLink = (href: string, label: string) =>
  `<a href="${href}" style="color:#1d4ed8;text-decoration:underline;">${label}</a>`;

export const DEFAULT_TEMPLATES: readonly EmailTemplateDefinition[] = [
  defineEmailTemplate({
    key: "verify-email",
    category: "account",
    variables: z.strictObject({ name: z.string().min(1).max(200), url: link() }),
    sample: { name: "Ada Lovelace", url: "https://app.example.test/verify?token=sample" },
    defaults: {
      subject: "Verify your email address",
      html: layout(
        paragraph("Hi {{name}},") +
          paragraph("Confirm your email address to finish signing up:") +
          button("{{url}}", "Verify email") +
          paragraph("If you did not sign up, ignore this message."),
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
        paragraph("Hi {{name}},") +
          paragraph("Someone asked to reset your password. If it was you, choose a new one:") +
          button("{{url}}", "Reset password") +
          paragraph("If it was not you, ignore this message; your password is unchanged."),
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
        paragraph("{{inviterName}} invited you to join <strong>{{organizationName}}</strong>.") +
          button("{{url}}", "Accept the invitation"),
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
      html: layout(
        paragraph("Welcome, {{name}}!") +
          `{% if url %}${paragraph(`Your account is ready: ${inlineLink("{{url}}", "{{url}}")}`)}` +
          `{% else %}${paragraph("Your account is ready.")}{% endif %}`,
      ),
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
    sample: {
      name: "Ada Lovelace",
      event: "A new device signed in to your account",
      details: "Firefox on Linux, 203.0.113.7",
    },
    defaults: {
      subject: "Security notice: {{event}}",
      html: layout(
        paragraph("Hi {{name}},") +
          paragraph("<strong>{{event}}</strong>") +
          `{% if details %}${paragraph("{{details}}")}{% endif %}` +
          paragraph("If this was not you, change your password now."),
      ),
      text: "Hi {{name}},\n\n{{event}}\n{{details}}\n\nIf this was not you, change your password now.\n",
    },
  }),
];
