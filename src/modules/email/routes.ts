/**
 * `/api/v1/email` routes. Routers validate input, call a verb of the module and map errors (the app's
 * error handler does); every route is defined once with its zod schemas.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import {
  createRoutes,
  errorResponses,
  jsonResponse,
  tenantOf,
  userOf,
  type PermissionGuard,
} from "../../http/kit/index.js";
import type { EmailModule } from "./api.js";
import type { EmailTemplateRow } from "./template-store.js";
import { SUBJECT_ONE_LINE } from "./render.js";

export interface EmailRoutesOptions {
  email: EmailModule;
  permissions: PermissionGuard;
}

const TemplateSchema = z
  .object({
    id: z.uuid(),
    tenantId: z.uuid().nullable(),
    key: z.string(),
    locale: z.string(),
    subject: z.string(),
    html: z.string(),
    text: z.string(),
    version: z.number().int(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("EmailTemplate");

/** Subject, HTML and text are Liquid templates (see the README's email section). */
const content = {
  // One header line: a CR or LF would let the subject start a header of its own.
  subject: z.string().min(1).max(998).regex(SUBJECT_ONE_LINE.pattern, SUBJECT_ONE_LINE.message),
  html: z.string().min(1).max(200_000),
  text: z.string().min(1).max(100_000),
};
const Locale = z.string().regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, "a BCP 47 tag such as en or de-AT");
const TemplateKey = z.string().min(1).max(100);

const CreateTemplateSchema = z
  .object({ key: TemplateKey, locale: Locale.optional(), ...content })
  .openapi("CreateEmailTemplate");
const UpdateTemplateSchema = z
  .object({ subject: content.subject.optional(), html: content.html.optional(), text: content.text.optional() })
  .refine((v) => v.subject !== undefined || v.html !== undefined || v.text !== undefined, "Give at least one field")
  .openapi("UpdateEmailTemplate");
const PreviewSchema = z
  .object({
    key: TemplateKey,
    locale: Locale.optional(),
    content: z.object(content).optional(),
    data: z.record(z.string(), z.unknown()).optional(),
  })
  .openapi("EmailTemplatePreviewRequest");
const RenderedSchema = z.object({ subject: z.string(), html: z.string(), text: z.string() }).openapi("RenderedEmail");
const IdParams = z.object({ id: z.uuid().openapi({ param: { name: "id", in: "path" } }) });

const PreferenceSchema = z
  .object({ category: z.string(), optedOut: z.boolean(), optional: z.boolean() })
  .openapi("EmailPreference");
const PreferencesSchema = z.object({ preferences: z.array(PreferenceSchema) }).openapi("EmailPreferences");
const UpdatePreferencesSchema = z
  .object({
    preferences: z
      .array(
        z.object({
          category: z
            .string()
            .min(1)
            .max(50)
            .regex(/^[a-z][a-z0-9_-]*$/),
          optedOut: z.boolean(),
        }),
      )
      .min(1)
      .max(50),
  })
  .openapi("UpdateEmailPreferences");

const DevMessageSchema = z
  .object({
    id: z.uuid(),
    sendId: z.uuid().nullable(),
    to: z.string(),
    from: z.string(),
    subject: z.string(),
    html: z.string(),
    text: z.string(),
    headers: z.record(z.string(), z.string()).nullable(),
    createdAt: z.string(),
  })
  .openapi("EmailDevMessage");

const toTemplate = (row: EmailTemplateRow) => ({
  ...row,
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString(),
});

/** `/api/v1/email` routes: templates, preview, webhooks, preferences, unsubscribe, development messages. */
export function createEmailRoutes({ email, permissions }: EmailRoutesOptions) {
  const app = createRoutes();
  const read = permissions.requirePermission("email.templates:read");
  const write = permissions.requirePermission("email.templates:write");
  // Before validation, so a signed-out caller learns nothing about the body it sent.
  const requireUser: MiddlewareHandler = async (c, next) => {
    userOf(c);
    await next();
  };
  const devGuard = permissions.requirePermission("email.dev_messages:read", { tenant: "global" });
  // Development messages hold live sign-in and reset links: readable without a permission only
  // where the environment is explicitly not production.
  const devOnly: MiddlewareHandler = async (c, next) => {
    if (email.transport !== "development") return c.notFound();
    if (email.devMessagesOpen) return next();
    return devGuard(c, next);
  };

  return app
    .openapi(
      createRoute({
        method: "get",
        path: "/templates",
        tags: ["Email"],
        summary: "List templates: the tenant's overrides and the defaults",
        middleware: [read] as const,
        request: { query: z.object({ key: TemplateKey.optional() }) },
        responses: {
          200: jsonResponse(z.object({ templates: z.array(TemplateSchema) }), "Templates"),
          ...errorResponses(400, 401, 403),
        },
      }),
      async (c) => {
        const rows = await email.listTemplates({ tenantId: tenantOf(c), key: c.req.valid("query").key });
        return c.json({ templates: rows.map(toTemplate) }, 200);
      },
    )

    .openapi(
      createRoute({
        method: "post",
        path: "/templates",
        tags: ["Email"],
        summary: "Create a template (inside a tenant: the tenant's override)",
        description:
          "Subject, HTML and text are Liquid. Refused with 400 when a part does not parse (TEMPLATE_SYNTAX_INVALID, " +
          "naming the part, line and column), reads an undeclared variable, or the subject has CR/LF; with 422 " +
          "when the definition's sample data does not render within the limits (TEMPLATE_RENDER_FAILED).",
        middleware: [write] as const,
        request: { body: { required: true, content: { "application/json": { schema: CreateTemplateSchema } } } },
        responses: { 201: jsonResponse(TemplateSchema, "Created"), ...errorResponses(400, 401, 403, 409, 422) },
      }),
      async (c) => {
        const row = await email.createTemplate({ tenantId: tenantOf(c), input: c.req.valid("json") });
        return c.json(toTemplate(row), 201);
      },
    )

    .openapi(
      createRoute({
        method: "post",
        path: "/templates/preview",
        tags: ["Email"],
        summary: "Render a template (stored or unsaved) with sample or given data",
        middleware: [read] as const,
        request: { body: { required: true, content: { "application/json": { schema: PreviewSchema } } } },
        responses: { 200: jsonResponse(RenderedSchema, "Rendered"), ...errorResponses(400, 401, 403, 404, 422) },
      }),
      async (c) => c.json(await email.previewTemplate({ tenantId: tenantOf(c), input: c.req.valid("json") }), 200),
    )

    .openapi(
      createRoute({
        method: "get",
        path: "/templates/{id}",
        tags: ["Email"],
        summary: "Read a template",
        middleware: [read] as const,
        request: { params: IdParams },
        responses: { 200: jsonResponse(TemplateSchema, "The template"), ...errorResponses(400, 401, 403, 404) },
      }),
      async (c) =>
        c.json(toTemplate(await email.getTemplate({ tenantId: tenantOf(c), id: c.req.valid("param").id })), 200),
    )

    .openapi(
      createRoute({
        method: "patch",
        path: "/templates/{id}",
        tags: ["Email"],
        summary: "Change a template's content (its version goes up)",
        middleware: [write] as const,
        request: {
          params: IdParams,
          body: { required: true, content: { "application/json": { schema: UpdateTemplateSchema } } },
        },
        responses: { 200: jsonResponse(TemplateSchema, "Updated"), ...errorResponses(400, 401, 403, 404, 422) },
      }),
      async (c) => {
        const row = await email.updateTemplate({
          tenantId: tenantOf(c),
          id: c.req.valid("param").id,
          input: c.req.valid("json"),
        });
        return c.json(toTemplate(row), 200);
      },
    )

    .openapi(
      createRoute({
        method: "delete",
        path: "/templates/{id}",
        tags: ["Email"],
        summary: "Delete a template override",
        middleware: [write] as const,
        request: { params: IdParams },
        responses: { 204: { description: "Deleted" }, ...errorResponses(400, 401, 403, 404, 409) },
      }),
      async (c) => {
        await email.deleteTemplate({ tenantId: tenantOf(c), id: c.req.valid("param").id });
        return c.body(null, 204);
      },
    )

    .openapi(
      createRoute({
        method: "post",
        path: "/webhooks/resend",
        tags: ["Email"],
        summary: "Resend webhook (Svix signature over the raw body: svix-id, svix-timestamp, svix-signature)",
        // No body validator on purpose: the signature covers the exact bytes, read raw below.
        responses: {
          200: jsonResponse(
            z.object({ outcome: z.enum(["processed", "replayed", "ignored"]), eventId: z.string() }),
            "Accepted (a replayed event id is acknowledged and ignored)",
          ),
          ...errorResponses(401, 503),
        },
      }),
      async (c) => {
        const raw = await c.req.text();
        const result = await email.handleResendWebhook(raw, {
          "svix-id": c.req.header("svix-id"),
          "svix-timestamp": c.req.header("svix-timestamp"),
          "svix-signature": c.req.header("svix-signature"),
        });
        return c.json({ outcome: result.outcome, eventId: result.eventId }, 200);
      },
    )

    .openapi(
      createRoute({
        method: "get",
        path: "/preferences",
        tags: ["Email"],
        summary: "The signed-in user's email preferences",
        middleware: [requireUser] as const,
        responses: { 200: jsonResponse(PreferencesSchema, "Preferences"), ...errorResponses(401) },
      }),
      async (c) => c.json({ preferences: await email.getPreferences(userOf(c).id) }, 200),
    )

    .openapi(
      createRoute({
        method: "put",
        path: "/preferences",
        tags: ["Email"],
        summary: "Opt the signed-in user in or out of categories (account and security mail cannot be opted out of)",
        middleware: [requireUser] as const,
        request: { body: { required: true, content: { "application/json": { schema: UpdatePreferencesSchema } } } },
        responses: { 200: jsonResponse(PreferencesSchema, "Updated preferences"), ...errorResponses(400, 401) },
      }),
      async (c) => {
        const user = userOf(c);
        return c.json({ preferences: await email.updatePreferences(user.id, c.req.valid("json").preferences) }, 200);
      },
    )

    .openapi(
      createRoute({
        method: "post",
        path: "/unsubscribe",
        tags: ["Email"],
        summary: "RFC 8058 one-click unsubscribe: the signed token is the authorization, no session",
        request: { query: z.object({ token: z.string().min(10).max(2000) }) },
        responses: {
          200: jsonResponse(z.object({ unsubscribed: z.literal(true), category: z.string() }), "Unsubscribed"),
          ...errorResponses(400),
        },
      }),
      async (c) => {
        const { category } = await email.unsubscribe(c.req.valid("query").token);
        return c.json({ unsubscribed: true as const, category }, 200);
      },
    )

    .openapi(
      createRoute({
        method: "get",
        path: "/dev/messages",
        tags: ["Email"],
        summary: "Messages the development transport recorded (only without a Resend key)",
        middleware: [devOnly] as const,
        request: {
          query: z.object({
            to: z.string().max(320).optional(),
            limit: z.coerce.number().int().min(1).max(500).optional(),
          }),
        },
        responses: {
          200: jsonResponse(z.object({ messages: z.array(DevMessageSchema) }), "Messages, newest first"),
          ...errorResponses(400, 401, 403, 404),
        },
      }),
      async (c) => {
        const rows = await email.listDevMessages(c.req.valid("query"));
        return c.json({ messages: rows.map(toDevMessage) }, 200);
      },
    )

    .openapi(
      createRoute({
        method: "get",
        path: "/dev/messages/{id}",
        tags: ["Email"],
        summary: "One message the development transport recorded",
        middleware: [devOnly] as const,
        request: { params: IdParams },
        responses: { 200: jsonResponse(DevMessageSchema, "The message"), ...errorResponses(400, 401, 403, 404) },
      }),
      async (c) => c.json(toDevMessage(await email.getDevMessage(c.req.valid("param").id)), 200),
    );
}

function toDevMessage(row: Awaited<ReturnType<EmailModule["getDevMessage"]>>) {
  return {
    id: row.id,
    sendId: row.sendId,
    to: row.toAddress,
    from: row.fromAddress,
    subject: row.subject,
    html: row.html,
    text: row.text,
    headers: row.headers,
    createdAt: row.createdAt.toISOString(),
  };
}
