/**
 * RFC 9457 problem documents: the one shape every error response takes.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ZodError } from "zod";
import { AppError, fromDatabaseError } from "../errors.js";
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

/** Maps anything thrown in a handler to a problem document; unknown errors are logged, never shown. */
export function errorToProblem(error: unknown, c: Context, logger: ErrorLogger): Response {
  const mapped = fromDatabaseError(error);
  if (mapped instanceof AppError) {
    const response = problemResponse(c, mapped.status, mapped.code, mapped.message, mapped.details ?? {});
    if (mapped.code === "TENANT_MOVING") response.headers.set("retry-after", "5");
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
  logger.error("unhandled error", {
    requestId: c.get("requestId"),
    path: new URL(c.req.url).pathname,
    error: error instanceof Error ? { name: error.name, message: error.message, stack: error.stack } : String(error),
  });
  return problemResponse(c, 500, "INTERNAL", "Something went wrong on our side; the request id identifies it in our logs");
}
