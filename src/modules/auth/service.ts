/**
 * The auth module's SDK surface: better-auth's server API plus the helpers scripts and tests need.
 */
import { eq, gt } from "drizzle-orm";
import type { Router } from "../../db/router.js";
import type { Logger } from "../../logger.js";
import { CommonErrors } from "../../errors.js";
import type { AuditModule } from "../audit/index.js";
import type { EmailModule } from "../email/index.js";
import type { PermissionsModule } from "../permissions/index.js";
import { createBetterAuth, DEFAULT_COOKIE_CACHE_SECONDS, DEFAULT_JWT_TTL_SECONDS, DEFAULT_SESSION_MAX_AGE_SECONDS, sessionCookieName, sessionCookieNames, type AuthOptions } from "./better-auth.js";
import { createSessionTruth } from "./session-truth.js";
import { createRevocations } from "./revocations.js";
import { createSessionCache } from "./session-cache.js";
import { createSessionMiddleware, resolveSession } from "./middleware.js";
import { createMemberships } from "./memberships.js";
import { createAuthRateLimit } from "./rate-limit.js";
import { createPasswordWork } from "./password-work.js";
import type { MiddlewareHandler } from "hono";
import { OWASP_SCRYPT } from "./password.js";
import { sessionRevocations, users } from "./schema.js";

/**
 * Bearer tokens are accepted signed only (a token read from the sessions table is useless), and
 * better-auth hands the signed form out in the `set-auth-token` header while the answer's body
 * carries the bare session token. The body's `token` becomes the signed one too, so the token a
 * client reads from the sign-in answer is one it can use.
 */
async function withSignedToken(response: Response): Promise<Response> {
  const signed = response.headers.get("set-auth-token");
  if (!signed || !response.headers.get("content-type")?.includes("application/json")) return response;
  const body = (await response.clone().json().catch(() => undefined)) as { token?: unknown } | undefined;
  if (!body || typeof body.token !== "string" || body.token === signed) return response;
  const headers = new Headers(response.headers);
  headers.delete("content-length");
  return new Response(JSON.stringify({ ...body, token: signed }), { status: response.status, headers });
}

export interface AuthModuleOptions {
  router: Router;
  audit: AuditModule;
  permissions: PermissionsModule;
  email: EmailModule;
  options: AuthOptions;
  logger: Logger;
  production: boolean;
}

export function createAuthModule({ router, audit, permissions, email, options, logger, production }: AuthModuleOptions) {
  if (production && options.secret.length < 32) {
    throw new Error("The auth secret (BETTER_AUTH_SECRET) must be at least 32 characters in production");
  }
  const cost = options.passwordCost ?? OWASP_SCRYPT;
  if (production && (cost.ln < OWASP_SCRYPT.ln || cost.r < OWASP_SCRYPT.r)) {
    throw new Error("A password hashing cost below OWASP's scrypt minimum (N=2^17, r=8, p=1) is refused in production");
  }
  const revocations = createRevocations(router, options.cookieCacheSeconds ?? DEFAULT_COOKIE_CACHE_SECONDS);
  const auth = createBetterAuth(options, { router, audit, permissions, email, revocations, logger, production });
  const sessionMaxAgeMs = (options.sessionMaxAgeSeconds ?? DEFAULT_SESSION_MAX_AGE_SECONDS) * 1000;
  const sessionCache = createSessionCache(revocations, { sessionCookie: sessionCookieName(production), sessionMaxAgeMs });
  const memberships = createMemberships(router, revocations);
  const admit = createSessionTruth({
    auth,
    revocations,
    cache: sessionCache,
    cookies: sessionCookieNames(production),
    secure: production,
    sessionMaxAgeMs,
  });
  const trustedOrigins = options.trustedOrigins ?? [];

  return {
    /** better-auth's server API (`sdk.auth.api.signInEmail(...)`, organization, admin, two-factor …). */
    api: auth.api,
    /**
     * better-auth's fetch handler, mounted at `/api/auth/*`, behind the one session truth: a session
     * ended on any instance is refused here as on `/api/v1` (session-truth.ts).
     */
    async handler(request: Request): Promise<Response> {
      const admitted = await admit(request);
      const response = await withSignedToken(await auth.handler(admitted.request));
      if (admitted.clearCookies.length === 0) return response;
      const cleared = new Response(response.body, response);
      // A cookie the response sets itself (a sign-in's new session) is not cleared after it.
      const set = new Set(response.headers.getSetCookie().map((line) => line.slice(0, line.indexOf("="))));
      for (const line of admitted.clearCookies) if (!set.has(line.slice(0, line.indexOf("=")))) cleared.headers.append("set-cookie", line);
      return cleared;
    },
    /** The better-auth instance itself. */
    instance: auth,
    /**
     * The session of a request (cookie or bearer token), or null.
     *
     * @example
     * const session = await sdk.auth.getSession(request.headers);
     * if (!session) return new Response("Unauthorized", { status: 401 });
     */
    async getSession(headers: Headers) {
      return (await resolveSession(auth, headers, revocations, sessionCache, sessionMaxAgeMs)).data;
    },
    /**
     * Creates a user with a password (sign-up in one unit of work: user, account, default role, audit
     * event, verification email). For scripts and tests; `emailVerified: true` marks the address verified.
     *
     * @example
     * const user = await sdk.auth.createUser({ email: "ada@example.com", password: "correct horse", name: "Ada" });
     */
    async createUser(input: { email: string; password: string; name: string; emailVerified?: boolean }) {
      return router.transaction(async () => {
        const email = input.email.toLowerCase();
        const [existing] = await router.db("auth").select({ id: users.id }).from(users).where(eq(users.email, email));
        if (existing) throw CommonErrors.CONFLICT({ email }, "A user with this email already exists");
        const result = await auth.api.signUpEmail({ body: { email, password: input.password, name: input.name } });
        if (input.emailVerified) {
          await router.db("auth").update(users).set({ emailVerified: true }).where(eq(users.id, result.user.id));
        }
        return { ...result.user, emailVerified: input.emailVerified ?? false };
      });
    },
    /**
     * The address of a user, or undefined (the email module's recipients port).
     *
     * @example
     * const to = await sdk.auth.emailOf(userId);
     */
    async emailOf(userId: string): Promise<string | undefined> {
      if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(userId)) return undefined;
      const [row] = await router.db("auth").select({ email: users.email }).from(users).where(eq(users.id, userId));
      return row?.email;
    },
    /** better-auth's own OpenAPI document (paths relative to `/api/auth`). */
    openApiDocument: () => auth.api.generateOpenAPISchema() as Promise<unknown>,
    /** Browser origins trusted for cookies and CORS. */
    trustedOrigins,
    /**
     * Whether a user is a member of a tenant (organization).
     *
     * @example
     * if (!(await sdk.auth.isMember(userId, tenantId))) throw new Error("not in this tenant");
     */
    isMember: (userId: string, tenantId: string) => memberships.isMember(userId, tenantId),
    /**
     * Hono middleware for `/api/auth/*`, mounted before the request's unit of work: rate limits (429),
     * then the password work of the routes that hash (computed while holding no connection).
     */
    guardMiddleware: (): MiddlewareHandler[] => [
      createAuthRateLimit({ router, enabled: options.rateLimit ?? true }),
      createPasswordWork({ router, cost, concurrency: options.hashingConcurrency }),
    ],
    /** Hono middleware giving `/api/v1` routes their user, session and tenant. */
    sessionMiddleware: () =>
      createSessionMiddleware({ auth, router, revocations, cache: sessionCache, memberships, trustedOrigins, sessionMaxAgeMs }),
    /** Lifetime of the JWTs minted for other services, in seconds. */
    jwtTtlSeconds: options.jwtTtlSeconds ?? DEFAULT_JWT_TTL_SECONDS,
    /**
     * The users whose sessions ended (signed out, banned, reset, revoked) within the last `seconds`.
     *
     * @example
     * const recent = await sdk.auth.revokedWithin(300);
     */
    async revokedWithin(seconds: number) {
      return router
        .db("auth")
        .select({ userId: sessionRevocations.userId, revokedAt: sessionRevocations.revokedAt })
        .from(sessionRevocations)
        .where(gt(sessionRevocations.revokedAt, new Date(Date.now() - seconds * 1000)));
    },
    /** Starts applying other instances' session revocations (LISTEN); `npm start` calls it. */
    listen: () => revocations.listen(),
    /** Stops listening. */
    stop: () => revocations.stop(),
  };
}

export type AuthModule = ReturnType<typeof createAuthModule>;
