/**
 * `GET /api/v1/me`: who the request is, in which tenant. The rest of auth lives under `/api/auth/*`
 * (better-auth's own routes).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { createRoutes, errorResponses, requireSession } from "../../http/kit/index.js";

const MeSchema = z
  .object({
    user: z.object({
      id: z.string(),
      email: z.string(),
      name: z.string(),
      emailVerified: z.boolean(),
      role: z.string().nullable().optional(),
    }),
    session: z.object({ id: z.string(), expiresAt: z.string(), impersonatedBy: z.string().nullable().optional() }),
    tenant: z.object({ id: z.string() }).nullable(),
  })
  .openapi("Me");

export function createAuthRoutes() {
  const app = createRoutes();
  return app.openapi(
    createRoute({
      method: "get",
      path: "/",
      tags: ["Auth"],
      summary: "The signed-in user, their session and the tenant the request acts in",
      middleware: [requireSession] as const,
      responses: {
        200: { description: "The request's identity", content: { "application/json": { schema: MeSchema } } },
        ...errorResponses(400, 401, 403),
      },
    }),
    (c) => {
      const user = c.get("user")!;
      const session = c.get("session")!;
      return c.json(
        {
          user,
          session: {
            id: session.id,
            expiresAt: new Date(session.expiresAt).toISOString(),
            impersonatedBy: session.impersonatedBy ?? null,
          },
          tenant: c.get("tenant"),
        },
        200,
      );
    },
  );
}

const RevocationsSchema = z
  .object({
    ttlSeconds: z
      .number()
      .int()
      .openapi({ description: "Lifetime of the tokens: entries older than this no longer matter" }),
    revoked: z.array(
      z.object({
        sub: z.string().openapi({ description: "The user whose sessions ended" }),
        revokedAt: z
          .number()
          .int()
          .openapi({ description: "Seconds since the epoch: a token of this sub issued at or before it is revoked" }),
      }),
    ),
  })
  .openapi("TokenRevocations");

export interface TokenRoutesOptions {
  /** The users whose sessions ended within the tokens' lifetime. */
  revokedWithin(seconds: number): Promise<{ userId: string; revokedAt: Date }[]>;
  ttlSeconds: number;
}

/**
 * `GET /api/v1/tokens/revocations`: what a service that verifies our JWTs offline (JWKS) needs to
 * honour a sign-out, a ban or a password reset before the token expires — reject a token whose `sub`
 * is listed with a `revokedAt` at or after its `iat`. Public, like a certificate revocation list:
 * it names opaque user ids only, and only for one token lifetime.
 */
export function createTokenRoutes(options: TokenRoutesOptions) {
  const app = createRoutes();
  return app.openapi(
    createRoute({
      method: "get",
      path: "/revocations",
      tags: ["Auth"],
      summary: "Users whose tokens were revoked within the tokens' lifetime (poll it; a few seconds' cache is fine)",
      security: [],
      responses: {
        200: {
          description: "The revocations that still matter",
          content: { "application/json": { schema: RevocationsSchema } },
        },
        ...errorResponses(503),
      },
    }),
    async (c) => {
      const rows = await options.revokedWithin(options.ttlSeconds);
      c.header("cache-control", "public, max-age=5");
      return c.json(
        {
          ttlSeconds: options.ttlSeconds,
          revoked: rows.map((r) => ({ sub: r.userId, revokedAt: Math.floor(r.revokedAt.getTime() / 1000) })),
        },
        200,
      );
    },
  );
}
