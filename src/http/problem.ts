/**
 * RFC 9457 problem documents: the one shape every error response takes.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ZodError } from "zod";
import { AppError, describeError, fromDatabaseError } from "../errors.js";

export { describeError };
import "./context.js";

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  code: string;
  requestId?: string;
  instance?: string;
  [extension: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

export function problemResponse(
  c: Context,
  status: number,
  code: string,
  detail: string,
  extensions: Record<string, unknown> = {},
): Response {
  const problem: Problem = {
    type: `urn:sv-sdk:problem:${code.toLowerCase().replaceAll("_", "-")}`,
    title: TITLES[status] ?? "Error",
    status,
    detail,
    code,
    requestId: c.get("requestId"),
    instance: new URL(c.req.url).pathname,
    ...extensions,
  };
  return c.body(JSON.stringify(problem), status as ContentfulStatusCode, {
    "content-type": "application/problem+json",
  });
}

/** Zod issues as `{ path, message }` pairs naming the failing fields. */
export function fieldErrors(error: ZodError): { path: string; message: string }[] {
  return error.issues.map((issue) => ({ path: issue.path.join(".") || "(root)", message: issue.message }));
}

/** The validation hook for every route: a 400 naming the failing fields, never a 500. */
export function validationHook(
  result: { success: true } | { success: false; error: ZodError; target?: string },
  c: Context,
): Response | undefined {
  if (result.success) return undefined;
  return problemResponse(c, 400, "VALIDATION_FAILED", "The request is not valid", {
    errors: fieldErrors(result.error),
  });
}

export interface ErrorLogger {
  error(message: string, fields: Record<string, unknown>): void;
}

/**
 * Seconds a client should wait before retrying: what the error says (a rate limit's window), else
 * a short pause for anything transient (a 503).
 */
export function retryAfterOf(error: AppError): number | undefined {
  const stated = error.details?.retryAfter;
  if (typeof stated === "number") return stated;
  if (error.code === "TENANT_MOVING") return 5;
  if (error.status === 503) return 2;
  return undefined;
}

/** The driver-level cause of an error, for the log (never for the client). */
function causeOf(error: unknown): string | undefined {
  const cause = (error as { cause?: unknown })?.cause ?? error;
  if (cause instanceof AppError) return undefined;
  const { code, message } = cause as { code?: string; message?: string };
  return code ? `${code}${message ? `: ${message}` : ""}` : message;
}

/** Maps anything thrown in a handler to a problem document; unknown errors are logged, never shown. */
export function errorToProblem(error: unknown, c: Context, logger: ErrorLogger): Response {
  const mapped = fromDatabaseError(error);
  if (mapped instanceof AppError) {
    const response = problemResponse(c, mapped.status, mapped.code, mapped.message, mapped.details ?? {});
    const retryAfter = retryAfterOf(mapped);
    if (retryAfter !== undefined) response.headers.set("retry-after", String(retryAfter));
    if (mapped.status >= 500) {
      // A 503 says nothing about the request; the cause (the database's state) is the operator's.
      logger.error("request refused: unavailable", {
        requestId: c.get("requestId"),
        code: mapped.code,
        cause: causeOf(error),
      });
    }
    return response;
  }
  if (mapped instanceof ZodError) {
    return problemResponse(c, 400, "VALIDATION_FAILED", "The request is not valid", { errors: fieldErrors(mapped) });
  }
  if (mapped instanceof HTTPException) {
    const status = mapped.status;
    const code = status === 413 ? "PAYLOAD_TOO_LARGE" : status === 400 ? "BAD_REQUEST" : `HTTP_${status}`;
    return problemResponse(c, status, code, mapped.message || TITLES[status] || "Error");
  }
  logger.error("unhandled error", { requestId: c.get("requestId"), path: c.req.path, error: describeError(error) });
  return problemResponse(
    c,
    500,
    "INTERNAL",
    "Something went wrong on our side; the request id identifies it in our logs",
  );
}
