/**
 * One transport-free error for services. Each module declares its codes once (SCREAMING_SNAKE with a
 * human message and the HTTP status beside it); the HTTP adapter maps any AppError to problem+json.
 */
export interface ErrorCode {
  status: number;
  message: string;
}

export class AppError extends Error {
  override readonly name = "AppError";
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    /** Extra members for the problem document (e.g. the failing fields, the missing permission). */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/**
 * Declares a module's error codes and returns a thrower for each.
 *
 * @example
 * const errors = defineErrors({ ROLE_NOT_FOUND: { status: 404, message: "Role not found" } });
 * throw errors.ROLE_NOT_FOUND({ roleId });
 */
export function defineErrors<const T extends Record<string, ErrorCode>>(codes: T) {
  const throwers = {} as { [K in keyof T]: (details?: Record<string, unknown>, message?: string) => AppError };
  for (const [code, { status, message }] of Object.entries(codes)) {
    throwers[code as keyof T] = (details, override) => new AppError(code, status, override ?? message, details);
  }
  return throwers;
}

/** Errors any module may raise. */
export const CommonErrors = defineErrors({
  VALIDATION_FAILED: { status: 400, message: "The request is not valid" },
  UNAUTHENTICATED: { status: 401, message: "A valid session or bearer token is required" },
  SESSION_REQUIRED: { status: 401, message: "Sign in first: this needs a valid session cookie or bearer token" },
  FORBIDDEN: { status: 403, message: "You do not have permission to do this" },
  NOT_FOUND: { status: 404, message: "Not found" },
  CONFLICT: { status: 409, message: "The request conflicts with existing data" },
  PAYLOAD_TOO_LARGE: { status: 413, message: "The request body is too large" },
  UNAVAILABLE: { status: 503, message: "The service is not ready" },
  /** A database this request needs is down, unreachable or restarting: retry shortly. */
  DATABASE_UNAVAILABLE: { status: 503, message: "A database this request needs is unavailable; retry shortly" },
  /**
   * The database is up but the work could not get through in time: no free connection within the
   * acquire timeout, a statement or lock timeout, a deadlock it was chosen to break. Retry shortly.
   */
  DATABASE_BUSY: { status: 503, message: "The database is busy; retry shortly" },
  /** The request's own deadline (or the unit of work's) passed; nothing it did was kept. */
  DEADLINE_EXCEEDED: { status: 503, message: "The request took too long and was abandoned; retry shortly" },
  TENANT_MOVING: {
    status: 503,
    message:
      "This tenant is being moved to another database: its data can be read, and writes resume when the move completes",
  },
});

/**
 * Maps driver errors that are the caller's fault to AppErrors: a unique violation is a conflict, a
 * broken foreign key or check is bad input. Anything else is returned unchanged (a 500).
 */
export function fromDatabaseError(error: unknown): unknown {
  if (error instanceof AppError) return error;
  // drizzle wraps driver errors (DrizzleQueryError) with the driver's error as `cause` — and the
  // pool gate's own AppErrors (acquire timeout, deadline) the same way.
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  if (cause instanceof AppError) return cause;
  const pg = (hasCode(error) ? error : cause) as { code?: string; constraint_name?: string } | undefined;
  switch (pg?.code) {
    case "23505":
      return CommonErrors.CONFLICT({ constraint: pg.constraint_name }, "A record with these values already exists");
    case "23503":
      return CommonErrors.VALIDATION_FAILED({ constraint: pg.constraint_name }, "A referenced record does not exist");
    case "23514":
    case "22P02":
    case "22001":
    case "22003":
    case "22007":
    case "22008":
      return CommonErrors.VALIDATION_FAILED({ constraint: pg.constraint_name }, "A value is not valid");
    case "22021":
    case "22P05":
      // A NUL character (or one PostgreSQL cannot encode) in a text or JSON value.
      return CommonErrors.VALIDATION_FAILED({}, "A value contains a character that cannot be stored (NUL)");
    case "42501":
      return CommonErrors.FORBIDDEN({}, "The database refused this operation");
    case "25006":
      // read_only_sql_transaction: the runtime opens a tenant's units read-only only while the
      // tenant is being moved (src/db/router.ts, drizzle/0010).
      return CommonErrors.TENANT_MOVING();
    default: {
      const transient = unavailability(pg);
      if (!transient) return error;
      (transient as { cause?: unknown }).cause = error;
      return transient;
    }
  }
}

/**
 * postgres.js's own codes for a connection that failed or went away, and Node's socket errors. The
 * driver's message names hosts and users: it goes to the log, never into the problem document.
 */
const CONNECTION_CODES = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "CONNECTION_ENDED",
  "CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/**
 * A failure that says nothing about the request and everything about the database's state right
 * now: the caller should retry (503), never read it as "signed out" (401) or a bug (500).
 */
function unavailability(pg: { code?: string } | undefined): AppError | undefined {
  const code = pg?.code;
  if (!code) return undefined;
  if (CONNECTION_CODES.has(code)) return CommonErrors.DATABASE_UNAVAILABLE();
  // 08: connection exception; 57P01-57P03: admin/crash shutdown, cannot connect now; 53: out of
  // connections, memory or disk.
  if (code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03" || code.startsWith("53")) {
    return CommonErrors.DATABASE_UNAVAILABLE();
  }
  // 57014 statement timeout (or a cancel), 55P03 lock timeout, 40P01 deadlock, 40001 serialization,
  // 25P03 idle-in-transaction timeout: the database chose to stop this work; a retry may pass.
  if (code === "57014" || code === "55P03" || code === "40P01" || code === "40001" || code === "25P03") {
    return CommonErrors.DATABASE_BUSY({ sqlstate: code });
  }
  return undefined;
}

/**
 * The "retry shortly" (503) error an error stands for, looking through the causes libraries wrap
 * driver errors in (drizzle's DrizzleQueryError, better-auth's APIError); undefined when it is not one.
 */
export function transientError(error: unknown): AppError | undefined {
  for (let cause = error, depth = 0; cause && depth < 6; cause = (cause as { cause?: unknown }).cause, depth++) {
    const mapped = cause instanceof AppError ? cause : fromDatabaseError(cause);
    if (mapped instanceof AppError && mapped.status === 503) return mapped;
  }
  return undefined;
}

function hasCode(error: unknown): boolean {
  return typeof (error as { code?: unknown } | undefined)?.code === "string";
}

/**
 * An error for the log: each error of its cause chain by name, code and message, and the query text
 * of a failed query — never its bound parameters (drizzle puts them in its message: tokens, hashes).
 */
export function describeError(error: unknown): Record<string, unknown>[] {
  const chain: Record<string, unknown>[] = [];
  for (let e = error, depth = 0; e && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    if (!(e instanceof Error)) {
      chain.push({ value: String(e) });
      break;
    }
    const query = (e as { query?: unknown }).query;
    const entry: Record<string, unknown> = { name: e.name, code: (e as { code?: unknown }).code };
    if (typeof query === "string") entry.query = query;
    else entry.message = e.message;
    if (depth === 0) entry.stack = e.stack?.split("\n").slice(1, 6).join("\n");
    chain.push(entry);
  }
  return chain;
}
