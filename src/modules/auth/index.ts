/**
 * The auth module: identities, sessions and tenants (organizations) with better-auth, behind one
 * session truth for every route.
 */
import type { Context, MiddlewareHandler, Next } from "hono";
import { defineModule, type ModuleContext } from "../../db/module.js";
import { DEFAULT_JWT_TTL_SECONDS, type BetterAuth } from "./better-auth.js";
import { createPasswordWorkMiddleware, createRateLimitMiddleware, createSessionMiddleware } from "./middleware.js";
import { createAuthParts, type AuthDependencies } from "./parts.js";
import { createPasswordWork } from "./password-work.js";
import { createAuthRateLimit } from "./rate-limit.js";
import { revokedWithin, type Listening } from "./revocations.js";
import { handleAuthRequest } from "./session-truth.js";
import { resolveSession, type ResolvedSession } from "./sessions.js";
import { createTenant, type CreatedTenant, type CreateTenantInput } from "./tenants.js";
import { createUser, emailOf, userIdOf, type CreatedUser, type CreateUserInput } from "./users.js";

export {
  accounts,
  authSchema,
  invitations,
  jwks,
  members,
  organizations,
  rateLimits,
  sessions,
  twoFactors,
  users,
  verifications,
} from "./schema.js";
export { CLIENT_IP_HEADER, type AuthOptions, type BetterAuth } from "./better-auth.js";
export { createAuthRoutes, createTokenRoutes } from "./routes.js";
export { createTenantRoutes } from "./tenant-routes.js";
export { AuthErrors } from "./errors.js";
export { hashPassword, verifyPassword, OWASP_SCRYPT, TEST_ONLY_SCRYPT, type PasswordCost } from "./password.js";
export type {
  AuthDependencies,
  CreatedTenant,
  CreateTenantInput,
  CreatedUser,
  CreateUserInput,
  Listening,
  ResolvedSession,
};

/** `sdk.auth`: better-auth's server API plus what the app, scripts and tests need. */
export interface AuthModule {
  /** better-auth's server API (`sdk.auth.api.signInEmail(...)`, organization, admin, two-factor …). */
  api: BetterAuth["api"];
  /**
   * better-auth's fetch handler, mounted at `/api/auth/*`, behind the one session truth: a session
   * ended on any instance is refused here as on `/api/v1` (session-truth.ts).
   */
  handler(request: Request): Promise<Response>;
  /** The better-auth instance itself. */
  instance: BetterAuth;
  /**
   * The session of a request (cookie or bearer token), or null.
   *
   * @example
   * const session = await sdk.auth.getSession(request.headers);
   * if (!session) return new Response("Unauthorized", { status: 401 });
   */
  getSession(headers: Headers): Promise<ResolvedSession | null>;
  /**
   * Creates a user with a password (sign-up in one unit of work: user, account, default role, audit
   * event, verification email). For scripts and tests; `emailVerified: true` marks the address verified.
   *
   * @example
   * const user = await sdk.auth.createUser({ email: "ada@example.com", password: "correct horse", name: "Ada" });
   */
  createUser(input: CreateUserInput): Promise<CreatedUser>;
  /**
   * Creates a tenant (organization) owned by the user `headers` authenticate, placed as asked (a
   * region or database of the topology) or on the topology's default database — before any of its
   * rows is written. Whether the caller may choose a placement is the caller's to check
   * (`POST /api/v1/tenants` requires `tenants:place` globally). Audited as `tenant.created`.
   *
   * @example
   * const tenant = await sdk.auth.createTenant({ name: "Acme", placement: { region: "eu" } }, request.headers);
   */
  createTenant(input: CreateTenantInput, headers: Headers): Promise<CreatedTenant>;
  /**
   * The address of a user, or undefined (the email module's recipients port).
   *
   * @example
   * const to = await sdk.auth.emailOf(userId);
   */
  emailOf(userId: string): Promise<string | undefined>;
  /**
   * The user an address belongs to, or undefined (the email module's recipients port: their
   * preferences apply to mail sent to the address).
   *
   * @example
   * const userId = await sdk.auth.userIdOf("ada@example.com");
   */
  userIdOf(address: string): Promise<string | undefined>;
  /** better-auth's own OpenAPI document (paths relative to `/api/auth`). */
  openApiDocument(): Promise<unknown>;
  /** Browser origins trusted for cookies and CORS. */
  trustedOrigins: string[];
  /**
   * Whether a user is a member of a tenant (organization).
   *
   * @example
   * if (!(await sdk.auth.isMember(userId, tenantId))) throw new Error("not in this tenant");
   */
  isMember(userId: string, tenantId: string): Promise<boolean>;
  /**
   * Hono middleware for `/api/auth/*`, mounted before the request's unit of work: rate limits (429),
   * then the password work of the routes that hash (computed while holding no connection).
   */
  guardMiddleware(): MiddlewareHandler[];
  /** Hono middleware giving `/api/v1` routes their user, session and tenant. */
  sessionMiddleware(): (c: Context, next: Next) => Promise<void>;
  /** Lifetime of the JWTs minted for other services, in seconds. */
  jwtTtlSeconds: number;
  /**
   * The users whose sessions ended (signed out, banned, reset, revoked) within the last `seconds`.
   *
   * @example
   * const recent = await sdk.auth.revokedWithin(300);
   */
  revokedWithin(seconds: number): Promise<{ userId: string; revokedAt: Date }[]>;
  /** Starts applying other instances' session revocations (LISTEN); `npm start` calls it. */
  listen(): Promise<Listening>;
  /** Stops listening. */
  stop(): Promise<void>;
}

function createAuthModule(context: ModuleContext, deps: AuthDependencies): AuthModule {
  const { auth, revocations, cache, memberships, truth, cost, sessionMaxAgeMs, trustedOrigins } = createAuthParts(
    context,
    deps,
  );
  return {
    api: auth.api,
    handler: (request) => handleAuthRequest(truth, request),
    instance: auth,
    getSession: async (headers) => (await resolveSession(auth, headers, revocations, cache, sessionMaxAgeMs)).data,
    createUser: (input) => createUser({ context, auth }, input),
    createTenant: (input, headers) => createTenant({ auth, placements: deps.placements, context }, input, headers),
    emailOf: (userId) => emailOf(context, userId),
    userIdOf: (address) => userIdOf(context, address),
    openApiDocument: () => auth.api.generateOpenAPISchema() as Promise<unknown>,
    trustedOrigins,
    isMember: (userId, tenantId) => memberships.isMember(userId, tenantId),
    guardMiddleware: () => [
      createRateLimitMiddleware(createAuthRateLimit({ context, enabled: deps.options.rateLimit ?? true })),
      createPasswordWorkMiddleware(createPasswordWork({ context, cost, concurrency: deps.options.hashingConcurrency })),
    ],
    sessionMiddleware: () =>
      createSessionMiddleware({ auth, revocations, cache, memberships, trustedOrigins, sessionMaxAgeMs }),
    jwtTtlSeconds: deps.options.jwtTtlSeconds ?? DEFAULT_JWT_TTL_SECONDS,
    revokedWithin: (seconds) => revokedWithin(context, seconds),
    listen: () => revocations.listen(),
    stop: () => revocations.stop(),
  };
}

/**
 * The auth module's descriptor: the control plane — identities, sessions, tenants (organizations) —
 * which stays where the control plane is; every other module's rows refer to it.
 */
export const authModule = defineModule({
  name: "auth",
  schema: "auth",
  tables: {
    users: "control-plane",
    sessions: "control-plane",
    accounts: "control-plane",
    verifications: "control-plane",
    organizations: "control-plane",
    members: "control-plane",
    invitations: "control-plane",
    jwks: "control-plane",
    two_factors: "control-plane",
    rate_limits: "control-plane",
    session_revocations: "control-plane",
  },
  tenants: { table: "organizations" },
  crossKeys: [
    // The platform's rows about a tenant go with it.
    {
      name: "tenant_placements_tenant_fk",
      from: "platform.tenant_placements.tenant_id",
      to: "auth.organizations.id",
      onDelete: "cascade",
    },
    {
      name: "tenant_moves_tenant_fk",
      from: "platform.tenant_moves.tenant_id",
      to: "auth.organizations.id",
      onDelete: "cascade",
    },
  ],
  create: (context, deps: AuthDependencies) => createAuthModule(context, deps),
});
