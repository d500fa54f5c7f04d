/**
 * `/api/v1/me/permissions`: what the signed-in user may do where they are (the rest of the
 * permissions API is routes.ts).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { createRoutes, errorResponses, jsonResponse, tenantOf, userOf } from "../../http/kit/index.js";
import type { PermissionsRoutesOptions } from "./routes.js";

/** `/api/v1/me` routes (`GET /permissions`): the signed-in user's effective permissions here. */
export function createMePermissionsRoutes({ permissions }: Pick<PermissionsRoutesOptions, "permissions">) {
  const app = createRoutes();
  return app.openapi(
    createRoute({
      method: "get",
      path: "/permissions",
      tags: ["Permissions"],
      summary: "Your effective permissions in the current tenant (global ones included)",
      middleware: [permissions.requirePermission("permissions:read:self")] as const,
      responses: {
        200: jsonResponse(
          z.object({ userId: z.uuid(), tenantId: z.uuid().nullable(), permissions: z.array(z.string()) }),
          "Permissions",
        ),
        ...errorResponses(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const user = userOf(c);
      const tenant = tenantOf(c);
      return c.json(
        { userId: user.id, tenantId: tenant, permissions: await permissions.permissionsOf(user.id, { tenant }) },
        200,
      );
    },
  );
}
