/**
 * createApp(sdk): the Hono application in front of the SDK — request ids, the request context, JSON
 * logs, CORS, body limits, one unit of work per mutating request, the modules' routes, health,
 * OpenAPI and docs, and one error mapper to problem+json.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import type { IncomingMessage } from "node:http";
import type { Sdk } from "./sdk.js";
import { corsForOrigins } from "./http/cors.js";
import { clientAddressResolver, type TrustProxy } from "./http/client-address.js";
import { requestHeader, withResponseHeaders } from "./http/headers.js";
import { createDocsRoutes } from "./http/docs.js";

import { mergeOpenApi, withTenantMovingResponses, type OpenApiDocument } from "./http/openapi.js";
import { createHealthRoutes } from "./http/health.js";
import { describeError, errorToProblem, fieldErrors, problemResponse, validationHook } from "./http/problem.js";
import { z } from "zod";
import { requestBody } from "./http/body-guard.js";
import { authBodyTypes } from "./http/auth-body-types.js";
import { Deadline } from "./db/deadline.js";
import { currentContext } from "./db/unit-of-work.js";
import { AppError } from "./errors.js";
import { childLogger } from "./logger.js";
import "./http/context.js";
import { createAuditRoutes } from "./modules/audit/index.js";
import { CLIENT_IP_HEADER, createAuthRoutes, createTenantRoutes, createTokenRoutes } from "./modules/auth/index.js";
import { createEmailRoutes, createMailViewer } from "./modules/email/index.js";
import { createMePermissionsRoutes, createPermissionsRoutes } from "./modules/permissions/index.js";

export interface AppOptions {
  /** Origins allowed to call the API from a browser (CORS, and better-auth's origin check). */
  trustedOrigins?: string[];
  /** Largest accepted request body, in bytes. Default 1 MiB. */
  bodyLimitBytes?: number;
  /** Log one JSON line per request. Default true. */
  logRequests?: boolean;
  /**
   * Reverse proxies in front that append to X-Forwarded-For: their number, or their addresses/CIDR
   * blocks (TRUST_PROXY). The client address is read from the header's right end. `true` means one.
   * Default false: the socket's address, whatever the header says.
   */
  trustProxy?: boolean | TrustProxy;
  /**
   * Every request's deadline: past it the request is answered 503 (DEADLINE_EXCEEDED, Retry-After)
   * and its unit of work rolls back. Default 10 s.
   */
  requestTimeoutMs?: number;
  /** Longest accepted path and query string, in bytes (414 above). Default 8 KiB. */
  maxUrlLength?: number;
}

const MUTATING = ["POST", "PUT", "PATCH", "DELETE"];
const PASSWORD_RESET_REQUEST = "/api/auth/request-password-reset";
const resetRequestBody = z.object({ email: z.email().max(320), redirectTo: z.string().max(2048).optional() });

/** A redirect target after a reset: a path on this site, or a URL on a trusted origin. */
function redirectAllowed(target: string, trustedOrigins: readonly string[]): boolean {
  if (target.startsWith("/") && !target.startsWith("//")) return true;
  try {
    return trustedOrigins.includes(new URL(target).origin);
  } catch {
    return false;
  }
}

/** better-auth's GET routes that write more than one row: they run in a unit of work like a POST. */
const WRITING_AUTH_GETS = ["/api/auth/verify-email"];

/** better-auth answers errors as `{ code, message }` JSON; the API answers every error as problem+json. */
async function asProblem(c: Context, response: Response): Promise<Response> {
  // A 500 better-auth made of a database that could not answer is a 503 the client may retry.
  const unavailable = response.status >= 500 ? currentContext().incidents?.unavailable : undefined;
  if (unavailable) throw unavailable;
  if (response.status < 400) return response;
  const json = response.headers.get("content-type")?.includes("application/json");
  const body = (
    json
      ? await response
          .clone()
          .json()
          .catch(() => ({}))
      : {}
  ) as { code?: string; message?: string };
  const problem = problemResponse(
    c,
    response.status,
    body.code ?? `HTTP_${response.status}`,
    body.message ?? "Request refused",
  );
  response.headers.forEach((value, key) => {
    if (key !== "content-type" && key !== "content-length") problem.headers.append(key, value);
  });
  return problem;
}

/** Thrown inside the unit of work to roll it back when the response is an error; never escapes. */
class RollbackResponse extends Error {}

/** The socket's address, as @hono/node-server's getConnInfo() reads it; app.request() in tests has none. */
function socketAddress(c: Context): string | undefined {
  return (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket?.remoteAddress;
}

/**
 * The path as logged: a path segment that looks like a token (a reset link's, say) is replaced, so a
 * clicked link never writes a live credential into the logs. Query strings are never logged.
 */
export function loggablePath(path: string): string {
  return path
    .replace(/\/(reset-password|verify-email|callback|accept-invitation)\/[^/]+/g, "/$1/:token")
    .replace(/\/[A-Za-z0-9_\-.~%]{32,}(?=\/|$)/g, "/:redacted");
}

/**
 * The request better-auth sees: the client address in our header, replacing any the client sent,
 * and the body as read in full (a middleware may have parsed it already; the whole body is read
 * before the handler runs either way).
 */
async function authRequest(c: Context, ip: string | undefined): Promise<Request> {
  const headers = new Headers(c.req.raw.headers);
  headers.delete(CLIENT_IP_HEADER);
  if (ip) headers.set(CLIENT_IP_HEADER, ip);
  const method = c.req.method;
  const body = method === "GET" || method === "HEAD" ? undefined : await c.req.arrayBuffer();
  return new Request(c.req.url, { method, headers, body: body?.byteLength ? body : undefined });
}

/**
 * Builds the HTTP application for an SDK.
 *
 * @example
 * const sdk = createSdk({ databaseUrl });
 * serve({ fetch: createApp(sdk).fetch, port: 3000 });
 */
export function createApp(sdk: Sdk, options: AppOptions = {}) {
  const app = new OpenAPIHono({ defaultHook: (result, c) => validationHook(result, c) });
  const logger = sdk.logger;

  const session = sdk.auth.sessionMiddleware();
  const cors = corsForOrigins({
    origins: options.trustedOrigins ?? sdk.auth.trustedOrigins,
    allowHeaders: ["content-type", "authorization", "x-tenant-id", "x-request-id"],
    exposeHeaders: ["x-request-id", "set-auth-token"],
  });
  // One middleware opens every request: its id (the client's X-Request-Id when well formed, as Hono's
  // requestId() accepts it), its context scope, its response headers (the id; CORS on /api) and its
  // log line — and, for /api/v1, the session. Each layer of the chain costs a few promises per
  // request, and on Node 20 every promise pays the AsyncLocalStorage hooks: measured, this is one
  // layer where there were four.
  const logRequests = options.logRequests !== false;
  const trustProxy = options.trustProxy === true ? 1 : (options.trustProxy ?? false);
  const resolveClient = clientAddressResolver(trustProxy);
  const clientIp = (c: Context) =>
    resolveClient(socketAddress(c), trustProxy === false ? undefined : requestHeader(c, "x-forwarded-for"));
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  const maxUrlLength = options.maxUrlLength ?? 8 * 1024;
  app.use((c, next) => {
    const started = logRequests ? performance.now() : 0;
    let id = requestHeader(c, "x-request-id");
    if (!id || id.length > 255 || /[^\w\-=]/.test(id)) id = crypto.randomUUID();
    c.set("requestId", id);
    const path = c.req.path;
    const corsHeaders = path.startsWith("/api/") ? cors.headersFor(c) : undefined;
    // The session, tenant and actor of /api/v1 requests, resolved before the unit of work opens so
    // the transaction starts with the tenant set for row-level security. Called from this layer
    // rather than registered as one more (a layer is a few promises per request, see above).
    const rest = path.startsWith("/api/v1/") ? () => session(c, next) : next;
    const deadline = Deadline.in(requestTimeoutMs, "request");
    const context = {
      requestId: id,
      ip: clientIp(c),
      userAgent: requestHeader(c, "user-agent"),
      deadline,
      incidents: {},
    };
    // Not an async function: the chain's own promise is returned (or, to log, one `then` on it).
    const target = c.req.url.slice(c.req.url.indexOf("/", 8));
    const chain =
      target.length > maxUrlLength
        ? Promise.resolve(
            void (c.res = problemResponse(
              c,
              414,
              "URI_TOO_LONG",
              `The path and query may be at most ${maxUrlLength} bytes`,
            )),
          )
        : // PostgreSQL stores no NUL: refused here, before a streamed answer (an export) has begun —
          // a database error after its first byte could only drop the connection.
          target.includes("%00")
          ? Promise.resolve(
              void (c.res = problemResponse(
                c,
                400,
                "VALIDATION_FAILED",
                "The path or query contains a NUL character (%00)",
              )),
            )
          : sdk.withContext(context, () => withResponseHeaders(c, rest, { set: { "x-request-id": id } }, corsHeaders));
    // Past the deadline the client gets its answer; the work still running is cut off where it next
    // touches the database (its unit of work races the same deadline and rolls back).
    const done = deadline.race(chain).then(
      () => deadline.dispose(),
      (error: unknown) => {
        deadline.dispose();
        if (!(error instanceof AppError && error.code === "DEADLINE_EXCEEDED")) throw error;
        c.res = errorToProblem(error, c, logger);
      },
    );
    if (!logRequests) return done;
    const requestLog = childLogger(logger, { requestId: id, method: c.req.method, path: loggablePath(path) });
    return done.then(() => {
      requestLog.info("request", {
        status: c.res.status,
        durationMs: Math.round((performance.now() - started) * 10) / 10,
      });
    });
  });
  app.options("/api/*", cors.preflight);

  // Bodies are read whole and checked before any route runs (size, and JSON well-formedness);
  // registered for the methods that carry one, so a GET does not even pass through: reading the
  // body makes @hono/node-server build a full Request — measured at roughly half the CPU of a
  // cached GET.
  app.on(MUTATING, "*", requestBody({ maxBytes: options.bodyLimitBytes ?? 1024 * 1024 }));

  // A mutating API request is one unit of work: it commits when the response is a success and rolls
  // back otherwise, so an error never leaves a half-written row. Every auth request is one too
  // (better-auth writes on some GETs, e.g. verify-email).
  const unitOfWork: MiddlewareHandler = async (c, next) => {
    try {
      await sdk.transaction(async () => {
        await next();
        if (c.error || c.res.status >= 400) throw new RollbackResponse();
      });
    } catch (error) {
      if (!(error instanceof RollbackResponse)) throw error;
    }
  };
  // Fields better-auth would coerce from another type are refused first (its document states them).
  app.post(
    "/api/auth/*",
    authBodyTypes(() => openApiDocument()),
  );
  // Auth's rate limits and password-hashing gate decide before a unit of work holds a connection.
  app.use("/api/auth/*", ...sdk.auth.guardMiddleware());
  app.on(MUTATING, "/api/*", (c, next) => (c.req.path === PASSWORD_RESET_REQUEST ? next() : unitOfWork(c, next)));
  // Other GETs (get-session above all) read, or write at most one row: no transaction of their own.
  for (const path of WRITING_AUTH_GETS) app.get(path, unitOfWork);
  // A reset request is answered before any of its work is done, the same for every email: the work
  // (a token, the mail in the outbox, the audit event) for a known address took measurably longer
  // than the nothing done for an unknown one, which told an observer which addresses have accounts.
  app.post(PASSWORD_RESET_REQUEST, async (c) => {
    const parsed = resetRequestBody.safeParse(await c.req.json().catch(() => undefined));
    if (!parsed.success) {
      return problemResponse(c, 400, "VALIDATION_FAILED", "The request is not valid", {
        errors: fieldErrors(parsed.error),
      });
    }
    const redirectTo = parsed.data.redirectTo;
    if (redirectTo !== undefined && !redirectAllowed(redirectTo, sdk.auth.trustedOrigins)) {
      return problemResponse(c, 403, "INVALID_REDIRECT_URL", "redirectTo must be a path or a URL on a trusted origin");
    }
    const request = await authRequest(c, currentContext().ip);
    const { requestId, ip, userAgent } = currentContext();
    setImmediate(() => {
      sdk
        .withContext({ requestId, ip, userAgent, deadline: undefined, incidents: {} }, () =>
          sdk.transaction(async () => {
            const response = await sdk.auth.handler(request);
            if (response.status >= 400) throw new Error(`better-auth answered ${response.status}`);
          }),
        )
        .catch((error: unknown) =>
          logger.error("password reset request failed after its answer", { requestId, error: describeError(error) }),
        );
    });
    return c.json(
      { status: true, message: "If this email exists in our system, check your email for the reset link" },
      200,
    );
  });

  app.route("/", createHealthRoutes(sdk.router, logger));
  app.on(["GET", "POST"], "/api/auth/*", async (c) =>
    asProblem(c, await sdk.auth.handler(await authRequest(c, currentContext().ip))),
  );
  // One chain, so the app's type carries every /api/v1 route for the typed client (sv-sdk/client).
  const api = app
    .route("/api/v1/me", createAuthRoutes())
    .route(
      "/api/v1/tokens",
      createTokenRoutes({ revokedWithin: sdk.auth.revokedWithin, ttlSeconds: sdk.auth.jwtTtlSeconds }),
    )
    .route("/api/v1/me", createMePermissionsRoutes({ permissions: sdk.permissions }))
    .route("/api/v1/tenants", createTenantRoutes({ tenants: sdk.auth, permissions: sdk.permissions }))
    .route(
      "/api/v1/permissions",
      createPermissionsRoutes({ permissions: sdk.permissions, isMember: sdk.auth.isMember }),
    )
    .route("/api/v1/audit", createAuditRoutes({ audit: sdk.audit, permissions: sdk.permissions }))
    .route("/api/v1/email", createEmailRoutes({ email: sdk.email, permissions: sdk.permissions }));
  // Development only: recorded mail is readable when the development transport is active outside production.
  if (sdk.email.devMessagesOpen) app.route("/dev/mail", createMailViewer({ email: sdk.email }));

  const documentConfig = {
    openapi: "3.1.0",
    info: {
      title: "sv-sdk API",
      version: "0.1.0",
      description:
        "Auth, permissions, audit and email. Sign in at /api/auth (cookie or bearer token); errors are application/problem+json (RFC 9457).",
    },
  };
  let document: Promise<OpenApiDocument> | undefined;
  const openApiDocument = () =>
    (document ??= sdk.auth
      .openApiDocument()
      .then((auth) =>
        withTenantMovingResponses(
          mergeOpenApi(
            app.getOpenAPI31Document(documentConfig) as OpenApiDocument,
            auth as OpenApiDocument,
            "/api/auth",
          ),
        ),
      ));
  app.get("/openapi.json", async (c) => c.json(await openApiDocument()));
  app.route("/docs", createDocsRoutes({ document: openApiDocument }));

  app.notFound((c) => problemResponse(c, 404, "NOT_FOUND", `No route for ${c.req.method} ${c.req.path}`));
  app.onError((error, c) => errorToProblem(error, c, logger));
  return api;
}

export type App = ReturnType<typeof createApp>;
