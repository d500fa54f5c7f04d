/**
 * `/api/v1/invoices`: routes defined once with their zod schemas (so they appear in /openapi.json and
 * bad input is a 400 problem naming the fields), guarded by sv-sdk permissions.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { createRoutes, errorResponses, type Sdk } from "sv-sdk";
import { createInvoiceService } from "./service.js";

const Invoice = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    customerUserId: z.string(),
    amountCents: z.number().int(),
    description: z.string(),
    createdAt: z.string(),
  })
  .openapi("Invoice");

const NewInvoice = z.object({
  customerUserId: z.uuid(),
  amountCents: z.number().int().positive().max(100_000_000),
  description: z.string().min(1).max(500),
});

const toJson = (row: { createdAt: Date } & Omit<z.infer<typeof Invoice>, "createdAt">) => ({
  id: row.id,
  tenantId: row.tenantId,
  customerUserId: row.customerUserId,
  amountCents: row.amountCents,
  description: row.description,
  createdAt: row.createdAt.toISOString(),
});

export function createInvoiceRoutes(sdk: Sdk) {
  const service = createInvoiceService(sdk);
  const app = createRoutes();
  app.openapi(
    createRoute({
      method: "post",
      path: "/",
      tags: ["Invoices (example)"],
      summary: "Create an invoice in the current tenant and email the customer",
      middleware: [sdk.permissions.requirePermission("invoices:write")] as const,
      request: { body: { content: { "application/json": { schema: NewInvoice } }, required: true } },
      responses: {
        201: { description: "Created", content: { "application/json": { schema: Invoice } } },
        ...errorResponses(400, 401, 403),
      },
    }),
    async (c) => c.json(toJson(await service.createInvoice(c.req.valid("json"))), 201),
  );
  app.openapi(
    createRoute({
      method: "get",
      path: "/",
      tags: ["Invoices (example)"],
      summary: "The current tenant's invoices",
      middleware: [sdk.permissions.requirePermission("invoices:read")] as const,
      responses: {
        200: {
          description: "Invoices",
          content: { "application/json": { schema: z.object({ invoices: z.array(Invoice) }) } },
        },
        ...errorResponses(401, 403),
      },
    }),
    async (c) => {
      const tenant = c.get("tenant");
      const rows = tenant ? await sdk.withTenant(tenant.id, () => service.listInvoices()) : [];
      return c.json({ invoices: rows.map(toJson) }, 200);
    },
  );
  return app;
}
