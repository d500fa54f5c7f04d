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
  FORBIDDEN: { status: 403, message: "You do not have permission to do this" },
  NOT_FOUND: { status: 404, message: "Not found" },
  CONFLICT: { status: 409, message: "The request conflicts with existing data" },
  PAYLOAD_TOO_LARGE: { status: 413, message: "The request body is too large" },
  UNAVAILABLE: { status: 503, message: "The service is not ready" },
  TENANT_MOVING: {
    status: 503,
    message: "This tenant is being moved to another database: its data can be read, and writes resume when the move completes",
  },
});

/**
 * Maps driver errors that are the caller's fault to AppErrors: a unique violation is a conflict, a
 * broken foreign key or check is bad input. Anything else is returned unchanged (a 500).
 */
export function fromDatabaseError(error: unknown): unknown {
  // drizzle wraps driver errors (DrizzleQueryError) with the driver's error as `cause`.
  const pg = (hasCode(error) ? error : (error as { cause?: unknown } | undefined)?.cause) as
    | { code?: string; constraint_name?: string }
    | undefined;
  switch (pg?.code) {
    case "23505":
      return CommonErrors.CONFLICT({ constraint: pg.constraint_name }, "A record with these values already exists");
    case "23503":
      return CommonErrors.VALIDATION_FAILED({ constraint: pg.constraint_name }, "A referenced record does not exist");
    case "23514":
    case "22P02":
      return CommonErrors.VALIDATION_FAILED({ constraint: pg.constraint_name }, "A value is not valid");
    case "42501":
      return CommonErrors.FORBIDDEN({}, "The database refused this operation");
    case "25006":
      // read_only_sql_transaction: the runtime opens a tenant's units read-only only while the
      // tenant is being moved (src/db/router.ts, drizzle/0010).
      return CommonErrors.TENANT_MOVING();
    default:
      return error;
  }
}

function hasCode(error: unknown): boolean {
  return typeof (error as { code?: unknown } | undefined)?.code === "string";
}
