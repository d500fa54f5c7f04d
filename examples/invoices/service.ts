/**
 * Creating an invoice: the row, its audit event and the customer's email commit together — one
 * `sdk.transaction` across the service's own schema and sv-sdk's modules.
 */
import { z } from "zod";
import { eq } from "drizzle-orm";
import { AppError, defineEmailTemplate, users, type Sdk } from "sv-sdk";
import { invoices } from "./schema.js";

export const invoiceCreatedEmail = defineEmailTemplate({
  key: "invoice-created",
  category: "billing",
  variables: z.object({ name: z.string(), amount: z.string(), description: z.string() }),
  sample: { name: "Ada", amount: "€12.00", description: "Consulting" },
  defaults: {
    subject: "New invoice: {{amount}}",
    html: "<p>Hi {{name}},</p><p>You have a new invoice for {{amount}}: {{description}}.</p>",
    text: "Hi {{name}},\n\nYou have a new invoice for {{amount}}: {{description}}.",
  },
});

export interface NewInvoice {
  customerUserId: string;
  amountCents: number;
  description: string;
}

export function createInvoiceService(sdk: Sdk) {
  return {
    /**
     * Creates an invoice in the current tenant and emails the customer.
     *
     * @example
     * await sdk.withTenant(tenantId, () => invoicesService.createInvoice({ customerUserId, amountCents: 1200, description: "Consulting" }));
     */
    async createInvoice(input: NewInvoice) {
      const { tenantId, actor } = sdk.context();
      if (!tenantId || tenantId === "*")
        throw new AppError("TENANT_REQUIRED", 400, "Invoices belong to a tenant: act in one (X-Tenant-Id)");
      return sdk.transaction(async () => {
        const [invoice] = await sdk
          .db()
          .insert(invoices)
          .values({ ...input, tenantId, createdBy: actor?.type === "user" ? actor.id : null })
          .returning();
        await sdk.audit.recordAuditEvent({
          action: "invoice.created",
          target: { type: "invoice", id: invoice!.id },
          changes: { after: invoice },
        });
        const [customer] = await sdk
          .db()
          .select({ name: users.name })
          .from(users)
          .where(eq(users.id, input.customerUserId));
        await sdk.email.enqueueEmail({
          userId: input.customerUserId,
          template: invoiceCreatedEmail.key,
          data: {
            name: customer?.name ?? "there",
            amount: `€${(input.amountCents / 100).toFixed(2)}`,
            description: input.description,
          },
        });
        return invoice!;
      });
    },

    /** The current tenant's invoices (row-level security keeps other tenants' out). */
    async listInvoices() {
      return sdk.db().select().from(invoices);
    },
  };
}
