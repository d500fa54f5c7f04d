/**
 * One OpenAPI 3.1 document for the whole API: our routes (from their zod definitions) merged with
 * better-auth's (from its openAPI plugin), whose paths are mounted under `/api/auth`.
 *
 * better-auth's part is completed on the way in, so that every operation describes what this server
 * really answers: errors as problem+json (the app rewrites better-auth's `{ code, message }` bodies),
 * a success response where its generator leaves none, the two ways to authenticate (session cookie or
 * bearer token), and tags that say what a group is rather than "Default".
 */
export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, unknown>>;
  components?: { schemas?: Record<string, unknown>; securitySchemes?: Record<string, unknown> };
  tags?: { name: string; description?: string }[];
  servers?: { url: string }[];
  [key: string]: unknown;
}

interface Operation {
  summary?: string;
  description?: string;
  tags?: string[];
  security?: Record<string, string[]>[];
  responses?: Record<string, Record<string, unknown>>;
  [key: string]: unknown;
}

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const WRITES = ["post", "put", "patch", "delete"];

/** Each operation of `paths`, mutable in place (the callers work on copies). */
function* operations(paths: OpenApiDocument["paths"]): Generator<[path: string, method: string, operation: Operation]> {
  for (const [path, item] of Object.entries(paths)) {
    for (const method of METHODS) {
      const operation = item[method] as Operation | undefined;
      if (operation) yield [path, method, operation];
    }
  }
}

const problem = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
});

const json = (description: string, schema: unknown) => ({ description, content: { "application/json": { schema } } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/**
 * Success responses better-auth 1.7's generator leaves out, as its handlers answer (checked against
 * better-auth's source). Keyed `METHOD path`, paths as better-auth names them (before the prefix).
 */
const AUTH_SUCCESS_RESPONSES: Record<string, Record<string, unknown>> = {
  "GET /callback/{id}": {
    302: {
      description: "Redirect to the callbackURL (errorCallbackURL on failure)",
      headers: { Location: { schema: { type: "string" } } },
    },
  },
  "POST /callback/{id}": {
    302: {
      description: "Redirect to the callbackURL (errorCallbackURL on failure)",
      headers: { Location: { schema: { type: "string" } } },
    },
  },
  "POST /organization/cancel-invitation": { 200: json("The canceled invitation", ref("Invitation")) },
  "GET /organization/list-invitations": {
    200: json("The organization's invitations", { type: "array", items: ref("Invitation") }),
  },
  "POST /organization/check-slug": {
    200: json("The slug is free (a taken slug is a 400)", {
      type: "object",
      properties: { status: { type: "boolean" } },
      required: ["status"],
    }),
  },
  "POST /organization/leave": { 200: json("The membership that ended", ref("Member")) },
  "GET /organization/list-members": {
    200: json("A page of the organization's members", {
      type: "object",
      properties: { members: { type: "array", items: ref("Member") }, total: { type: "integer" } },
      required: ["members", "total"],
    }),
  },
  "GET /organization/get-active-member-role": {
    200: json("The member's role in the active organization", {
      type: "object",
      properties: { role: { type: "string" } },
      required: ["role"],
    }),
  },
  "POST /admin/stop-impersonating": {
    200: json("The administrator's own session, restored", {
      type: "object",
      properties: { session: ref("Session"), user: ref("User") },
      required: ["session", "user"],
    }),
  },
};

/** better-auth's tags, renamed for readers of this API; `Default` joins our own `Auth` group. */
const AUTH_TAGS: Record<string, string> = { Default: "Auth", Organization: "Tenants", Jwt: "Tokens" };

/** The reference's groups, in reading order; a tag not listed here follows them. */
const TAGS: { name: string; description: string }[] = [
  {
    name: "Auth",
    description:
      "Sign up, sign in and out, sessions, email verification, password reset, your account. Sign-in answers with a session " +
      "cookie and the same session as a bearer token (`set-auth-token` header).",
  },
  {
    name: "Tenants",
    description: "Tenants are better-auth organizations: members, invitations, roles, the active tenant.",
  },
  {
    name: "Permissions",
    description: "Roles with `resource:action` permissions, per tenant or global; assignments; checks.",
  },
  { name: "Audit", description: "The append-only audit log: filtered, cursor-paginated queries and streamed exports." },
  { name: "Email", description: "Templates, preferences, one-click unsubscribe, provider webhooks." },
  { name: "Admin", description: "Platform administration: users, bans, impersonation." },
  { name: "Two-factor", description: "TOTP and backup codes." },
  { name: "Tokens", description: "Short-lived JWTs for other services, and the JWKS that verifies them." },
  { name: "Operations", description: "Liveness and readiness." },
];

/** The session cookie better-auth sets here (`advanced.cookiePrefix: "sv"`; `__Secure-` in production). */
const SESSION_COOKIE = "sv.session_token";

const SECURITY_SCHEMES = {
  bearerAuth: {
    type: "http",
    scheme: "bearer",
    description:
      "The session token: the `set-auth-token` response header of `POST /api/auth/sign-in/email` (also `token` in its body). " +
      "Send it as `Authorization: Bearer <token>`.",
  },
  cookieAuth: {
    type: "apiKey",
    in: "cookie",
    name: SESSION_COOKIE,
    description:
      `The session cookie sign-in sets (HttpOnly; \`__Secure-${SESSION_COOKIE}\` in production). A browser sends it by itself, ` +
      "so signing in from this page is enough; requests carrying it must come from a trusted origin (`TRUSTED_ORIGINS`).",
  },
};

/** Either scheme authenticates a request. */
const SESSION_OR_TOKEN: Record<string, string[]>[] = [{ bearerAuth: [] }, { cookieAuth: [] }];

/**
 * better-auth marks nearly every route as needing a bearer token, sign-up included. These answer
 * without a session (two-factor verification uses its own short-lived cookie); get-session answers
 * `null` without one. Every other better-auth route needs a session.
 */
const AUTH_PUBLIC_PATHS = new Set([
  "/sign-up/email",
  "/sign-in/email",
  "/sign-in/social",
  "/callback/{id}",
  "/verify-email",
  "/send-verification-email",
  "/request-password-reset",
  "/reset-password",
  "/reset-password/{token}",
  "/two-factor/send-otp",
  "/two-factor/verify-otp",
  "/two-factor/verify-totp",
  "/two-factor/verify-backup-code",
  "/ok",
  "/error",
  "/jwks",
]);
const AUTH_OPTIONAL_SESSION_PATHS = new Set(["/get-session"]);

/** A first sentence short enough for a title (the sidebar and search show summaries). */
function summaryOf(description: string | undefined): string | undefined {
  const sentence = description
    ?.split(/(?<=\.)\s|\n/)[0]
    ?.replace(/\.$/, "")
    .trim();
  return sentence && sentence.length <= 80 ? sentence : undefined;
}

/** better-auth's document as this server answers it, before it is mounted. */
function completeAuthDocument(mounted: OpenApiDocument): OpenApiDocument {
  const document = structuredClone(mounted);
  for (const [path, method, operation] of operations(document.paths)) {
    const responses = (operation.responses ??= {});
    Object.assign(responses, AUTH_SUCCESS_RESPONSES[`${method.toUpperCase()} ${path}`]);
    // The app answers every better-auth error as problem+json (src/app.ts, asProblem).
    for (const [status, response] of Object.entries(responses)) {
      if (Number(status) >= 400) responses[status] = problem(String(response.description ?? `HTTP ${status}`));
    }
    operation.tags = operation.tags?.map((tag) => AUTH_TAGS[tag] ?? tag);
    operation.summary ??= summaryOf(operation.description);
    if (operation.description?.replace(/\.$/, "").trim() === operation.summary) delete operation.description;
    // Replaces better-auth's requirements, and its `apiKeyCookie` scheme (a cookie by that name does not exist).
    operation.security = AUTH_PUBLIC_PATHS.has(path)
      ? []
      : AUTH_OPTIONAL_SESSION_PATHS.has(path)
        ? [{}, ...SESSION_OR_TOKEN]
        : SESSION_OR_TOKEN;
  }
  const signIn = (document.paths["/sign-in/email"]?.post as Operation | undefined)?.responses?.["200"];
  if (signIn) {
    signIn.headers = {
      "set-auth-token": {
        description: "The session as a bearer token (exposed to browsers through CORS)",
        schema: { type: "string" },
      },
      "Set-Cookie": { description: `The session cookie (\`${SESSION_COOKIE}\`, HttpOnly)`, schema: { type: "string" } },
    };
  }
  return document;
}

/**
 * Every operation answers errors it does not list (413, 414, a passed deadline's 503, a 500) as
 * problem+json: one `default` response says so. An /api/v1 operation that documents a 401 needs a
 * session, from either scheme.
 */
function completeOperations(document: OpenApiDocument): OpenApiDocument {
  for (const [path, , operation] of operations(document.paths)) {
    const responses = (operation.responses ??= {});
    responses.default ??= problem(
      "Any other error, as application/problem+json with `code` and `requestId` (e.g. 413 PAYLOAD_TOO_LARGE, 414 URI_TOO_LONG, " +
        "503 DEADLINE_EXCEEDED with Retry-After, 500)",
    );
    if (path.startsWith("/api/v1/") && responses["401"] && !operation.security) operation.security = SESSION_OR_TOKEN;
  }
  return document;
}

/**
 * Merges `mounted` (better-auth's document, served under `prefix`) into `base`, and completes the
 * result (see the file's comment). A component schema whose name `base` already uses is renamed
 * `Auth<Name>`, and the references to it rewritten.
 */
export function mergeOpenApi(base: OpenApiDocument, mounted: OpenApiDocument, prefix: string): OpenApiDocument {
  const auth = completeAuthDocument(mounted);
  let text = JSON.stringify({ paths: auth.paths, schemas: auth.components?.schemas ?? {} });
  for (const name of Object.keys(auth.components?.schemas ?? {})) {
    if (base.components?.schemas?.[name]) {
      text = text
        .replaceAll(`"#/components/schemas/${name}"`, `"#/components/schemas/Auth${name}"`)
        .replace(`"${name}":`, `"Auth${name}":`);
    }
  }
  const renamed = JSON.parse(text) as { paths: OpenApiDocument["paths"]; schemas: Record<string, unknown> };
  const paths: OpenApiDocument["paths"] = structuredClone(base.paths);
  for (const [path, item] of Object.entries(renamed.paths)) paths[`${prefix}${path}`] = item;
  const used = new Set([...operations(paths)].flatMap(([, , operation]) => operation.tags ?? []));
  const described = new Map([...(base.tags ?? []), ...TAGS].map((tag) => [tag.name, tag]));
  return completeOperations({
    ...base,
    paths,
    components: {
      ...base.components,
      schemas: { ...base.components?.schemas, ...renamed.schemas },
      securitySchemes: { ...base.components?.securitySchemes, ...SECURITY_SCHEMES },
    },
    tags: [...TAGS.map((tag) => tag.name), ...[...used].filter((name) => !TAGS.some((tag) => tag.name === name))]
      .filter((name) => used.has(name))
      .map((name) => described.get(name) ?? { name }),
  });
}

/**
 * Every write of the /api/v1 routes can meet a tenant that is being moved to another database: it is
 * then refused with 503 TENANT_MOVING and Retry-After (src/db/router.ts). Documented once here for
 * all of them rather than in each route's definition; a route that already documents a 503 keeps it.
 */
export function withTenantMovingResponses(document: OpenApiDocument, prefix = "/api/v1/"): OpenApiDocument {
  const paths: OpenApiDocument["paths"] = {};
  for (const [path, item] of Object.entries(document.paths)) {
    if (!path.startsWith(prefix)) {
      paths[path] = item;
      continue;
    }
    const operations: Record<string, unknown> = { ...item };
    for (const method of WRITES) {
      const operation = operations[method] as { responses?: Record<string, unknown> } | undefined;
      if (!operation || operation.responses?.["503"]) continue;
      operations[method] = {
        ...operation,
        responses: {
          ...operation.responses,
          503: {
            description:
              "The tenant the request acts in is being moved to another database (code TENANT_MOVING): retry after Retry-After seconds",
            headers: { "Retry-After": { schema: { type: "integer" }, description: "Seconds to wait before retrying" } },
            content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
          },
        },
      };
    }
    paths[path] = operations;
  }
  return { ...document, paths };
}
