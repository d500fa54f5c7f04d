/**
 * `GET /api/v1/me`: who the request is, in which tenant. The rest of auth lives under `/api/auth/*`
 * (better-auth's own routes).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { createRoutes, errorResponses } from "../../http/routes.js";
import { requireSession } from "./middleware.js";

const MeSchema = z
  .object({
    user: z.object({ id: z.string(), email: z.string(), name: z.string(), emailVerified: z.boolean(), role: z.string().nullable().optional() }),
    session: z.object({ id: z.string(), expiresAt: z.string(), impersonatedBy: z.string().nullable().optional() }),
    tenant: z.object({ id: z.string() }).nullable(),
  })
  .openapi("Me");

export function createAuthRoutes() {
  const app = createRoutes();
  return app
    .openapi(
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
            session: { id: session.id, expiresAt: new Date(session.expiresAt).toISOString(), impersonatedBy: session.impersonatedBy ?? null },
            tenant: c.get("tenant"),
          },
          200,
        );
      },
    );
}
