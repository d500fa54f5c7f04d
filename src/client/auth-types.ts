/**
 * The shapes of better-auth's client as this package declares it. better-auth infers its client's
 * types from its server plugins' types (zod schemas, endpoint definitions): checking even a short
 * file against them costs seconds and needs all of better-auth installed. Here each endpoint is
 * spelled out instead (`auth-endpoints.ts`, generated from better-auth's own types), and `src/client.ts`
 * assigns the real client to `AuthClient`: when better-auth's types change, this package's build fails
 * until `auth-endpoints.ts` is generated again.
 */

/** What better-auth's client answers: the data, or the error (never both). */
export type AuthResult<Data> = { data: Data; error: null } | { data: null; error: AuthError };

/**
 * An error answer. This server answers errors as problem+json (RFC 9457), so `code`, `detail` and
 * `requestId` are set; `message` is better-auth's own field, present on errors it made itself.
 */
export interface AuthError {
  status: number;
  statusText: string;
  code?: string | undefined;
  message?: string | undefined;
  detail?: string | undefined;
  title?: string | undefined;
  requestId?: string | undefined;
}

export interface AuthSuccessContext {
  data: unknown;
  response: Response;
}

export interface AuthErrorContext {
  response: Response;
  error: { status: number; statusText: string } & Record<string, unknown>;
}

/** Per-request options (better-fetch's, the ones that apply to this client). */
export interface AuthRequestOptions {
  headers?: Record<string, string> | undefined;
  signal?: AbortSignal | null | undefined;
  /** Milliseconds before the request is aborted. */
  timeout?: number | undefined;
  /** Skip the session signal a sign-in or sign-out sends to `useSession` subscribers. */
  disableSignal?: boolean | undefined;
  onSuccess?: ((context: AuthSuccessContext) => void | Promise<void>) | undefined;
  onError?: ((context: AuthErrorContext) => void | Promise<void>) | undefined;
  /** Not supported by these declarations: results are always `{ data, error }`. */
  throw?: false | undefined;
}

/** An endpoint whose argument is required: `auth.signIn.email({ email, password })`. */
export type AuthEndpoint<Arg, Data> = (
  arg: Arg & { fetchOptions?: AuthRequestOptions | undefined },
  options?: AuthRequestOptions,
) => Promise<AuthResult<Data>>;

/** An endpoint whose argument may be left out: `auth.getSession()`. */
export type OptionalAuthEndpoint<Arg, Data> = (
  arg?: (Arg & { fetchOptions?: AuthRequestOptions | undefined }) | undefined,
  options?: AuthRequestOptions,
) => Promise<AuthResult<Data>>;

/** The error a failed query leaves in an atom: better-fetch's `BetterFetchError`. */
export interface AuthQueryError extends Error {
  status: number;
  statusText: string;
  /** The error answer's body. */
  error: unknown;
}

/** A query's state as better-auth's atoms hold it (`useSession`, `useActiveOrganization` …). */
export interface AuthQueryState<Data> {
  data: Data | null;
  error: AuthQueryError | null;
  isPending: boolean;
  isRefetching: boolean;
}

/** A nanostores atom (what better-auth's vanilla client returns for `use*`); framework bindings read it. */
export interface AuthAtom<Value> {
  get(): Value;
  /** Calls `listener` now and on every change; returns the unsubscribe function. */
  subscribe(listener: (value: Value) => void): () => void;
  /** Calls `listener` on every change (not now); returns the unsubscribe function. */
  listen(listener: (value: Value) => void): () => void;
}

/** better-auth's fetch for endpoints these declarations leave out; the path is under `/api/auth`. */
export type AuthFetch = (
  path: string,
  options?: AuthRequestOptions & { method?: string; body?: unknown; query?: Record<string, unknown> },
) => Promise<AuthResult<unknown>>;
