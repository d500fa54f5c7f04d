/**
 * `POST /api/v1/tenants`: a signed-in user creates a tenant and becomes its owner. The tenant goes to
 * the topology's default database, or — for a caller holding `tenants:place` globally (a platform
 * permission) — to a region or database of the topology named in `placement`. better-auth's own
 * `/api/auth/organization/create` creates tenants too, always on the default database.
 */
import { createRoute, z } from "@hono/zod-openapi";
import {
  createRoutes,
  errorResponses,
  jsonBody,
  jsonResponse,
  requireSession,
  type PermissionGuard,
} from "../../http/kit/index.js";
import type { CreatedTenant, CreateTenantInput } from "./tenants.js";

/** The permission that lets a caller choose where a tenant is created (checked in the global scope). */
export const PLACE_TENANTS = "tenants:place";

const name = z
  .string()
  .regex(/^[a-z][a-z0-9_-]*$/)
  .max(63);

const CreateTenantBody = z
  .object({
    name: z.string().trim().min(1).max(100).openapi({ example: "Acme" }),
    slug: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]*$/, "lower-case letters, digits and dashes")
      .max(63)
      .optional()
      .openapi({ description: "Unique; made from the name when omitted", example: "acme" }),
    placement: z
      .object({
        region: name.optional().openapi({ description: "A region of the topology", example: "eu" }),
        database: name.optional().openapi({ description: "A database of the topology", example: "eu_1" }),
      })
      .strict()
      .refine((p) => p.region !== undefined || p.database !== undefined, "name a region, a database or both")
      .optional()
      .openapi({
        description:
          "Where the tenant's rows live (needs `tenants:place` granted globally). A region alone: its database " +
          "holding the fewest tenants (ties: the first listed). Without it: the topology's `tenants.defaultDatabase`.",
      }),
  })
  .strict()
  .openapi("CreateTenant");

const TenantSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    slug: z.string(),
    placement: z.object({ database: z.string(), region: z.string().nullable() }),
  })
  .openapi("Tenant");

export interface TenantRoutesOptions {
  tenants: { createTenant(input: CreateTenantInput, headers: Headers): Promise<CreatedTenant> };
  permissions: PermissionGuard;
}

export function createTenantRoutes({ tenants, permissions }: TenantRoutesOptions) {
  const app = createRoutes();
  const mayPlace = permissions.requirePermission(PLACE_TENANTS, { tenant: "global" });
  return app.openapi(
    createRoute({
      method: "post",
      path: "/",
      tags: ["Tenants"],
      summary: "Create a tenant (you become its owner), optionally in a region or database of the topology",
      middleware: [requireSession] as const,
      request: { body: jsonBody(CreateTenantBody) },
      responses: {
        201: jsonResponse(TenantSchema, "The tenant, and where it lives"),
        ...errorResponses(400, 401, 403, 409, 422, 503),
      },
    }),
    async (c) => {
      const body = c.req.valid("json");
      // Choosing where a tenant lives is the platform's: refused (403) before anything is written.
      if (body.placement) await mayPlace(c, async () => {});
      const tenant = await tenants.createTenant(body, c.req.raw.headers);
      return c.json(tenant, 201);
    },
  );
}
