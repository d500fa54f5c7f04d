/**
 * The example's tests, written as an SDK user would: `sv-sdk/testing` for the rollback fixture and
 * the factories, real PostgreSQL (the test run's global setup provides it, see the README).
 */
import { randomUUID } from "node:crypto";
import postgres from "postgres";
import { createSdk, type Sdk } from "sv-sdk";
import { sql } from "drizzle-orm";
import {
  addTestMember,
  createIsolatedDatabase,
  createTestRole,
  createTestTenant,
  createTestUser,
  cheapHashingTestSdkOptions,
  withRollback,
  type IsolatedDatabase,
} from "sv-sdk/testing";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createInvoicesApp } from "./app.js";
import { INVOICES_MIGRATION } from "./schema.js";
import { invoiceCreatedEmail } from "./service.js";

// The example's own database, cloned from sv-sdk's migrated template, with its own migration on top
// (DDL on a database other test files share would lock auth.users under their feet).
let database: IsolatedDatabase;
let sdk: Sdk;
let app: ReturnType<typeof createInvoicesApp>;
let owner: postgres.Sql;

beforeAll(async () => {
  database = await createIsolatedDatabase(inject("svTestDatabase"));
  owner = postgres(database.url, { max: 1, onnotice: () => {} });
  await owner.unsafe(INVOICES_MIGRATION);
  sdk = createSdk(cheapHashingTestSdkOptions(database, { email: { templates: [invoiceCreatedEmail] } }));
  app = createInvoicesApp(sdk, { logRequests: false });
  // The example's own template; sv-sdk's roles and templates came with the template database.
  await sdk.email.seed();
});
afterAll(async () => {
  await sdk?.close();
  await owner?.end({ timeout: 5 });
  await database?.drop();
});

const post = (body: unknown, headers: Record<string, string>) =>
  app.request("/api/v1/invoices", {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });

/** A tenant with a billing clerk (holding invoices:*) and a customer member. */
async function billingTenant() {
  const clerk = await createTestUser(sdk);
  const { tenant, headers } = await createTestTenant(sdk, clerk);
  await createTestRole(sdk, { permissions: ["invoices:*"], assignTo: clerk.user.id, tenant: tenant.id });
  const customer = await createTestUser(sdk, { name: "Grace" });
  return { clerk, customer, tenant, headers };
}

describe("POST /api/v1/invoices", () => {
  it("creates the invoice, its audit event and the customer's email in one unit of work", () =>
    withRollback(sdk, async () => {
      const { customer, tenant, headers } = await billingTenant();
      const res = await post(
        { customerUserId: customer.user.id, amountCents: 1250, description: "Consulting" },
        headers,
      );
      expect(res.status).toBe(201);
      const invoice = (await res.json()) as { id: string; tenantId: string };
      expect(invoice.tenantId).toBe(tenant.id);

      const page = await sdk.withTenant(tenant.id, () =>
        sdk.audit.queryEvents({ tenantId: tenant.id, action: "invoice." }),
      );
      expect(page.events.map((e) => e.action)).toEqual(["invoice.created"]);
      // The outbox row, rendered from the example's own template, in the same transaction.
      const mail = await sdk.withTenant("*", () =>
        sdk
          .db()
          .execute<{ subject: string; to_address: string }>(
            sql`select subject, to_address from email.email_sends where template_key = 'invoice-created' and user_id = ${customer.user.id}`,
          ),
      );
      expect(mail).toHaveLength(1);
      expect(mail[0]).toMatchObject({ subject: "New invoice: €12.50", to_address: customer.user.email });
    }));

  it("answers bad input with a 400 problem naming the field", () =>
    withRollback(sdk, async () => {
      const { customer, headers } = await billingTenant();
      const res = await post({ customerUserId: customer.user.id, amountCents: -5, description: "" }, headers);
      expect(res.status).toBe(400);
      const problem = (await res.json()) as { errors: { path: string }[] };
      expect(problem.errors.map((e) => e.path)).toEqual(expect.arrayContaining(["amountCents", "description"]));
    }));

  it("refuses anonymous callers (401) and members without invoices:write (403)", () =>
    withRollback(sdk, async () => {
      const { customer, tenant } = await billingTenant();
      expect((await post({ customerUserId: customer.user.id, amountCents: 100, description: "x" }, {})).status).toBe(
        401,
      );
      const member = await createTestUser(sdk);
      await addTestMember(sdk, tenant.id, member.user.id, "member");
      const res = await post(
        { customerUserId: customer.user.id, amountCents: 100, description: "x" },
        { ...member.headers, "x-tenant-id": tenant.id },
      );
      expect(res.status).toBe(403);
      expect(((await res.json()) as { permission: string }).permission).toBe("invoices:write");
    }));
});

describe("GET /api/v1/invoices", () => {
  it("shows a tenant only its own invoices", () =>
    withRollback(sdk, async () => {
      const a = await billingTenant();
      const b = await billingTenant();
      expect(
        (await post({ customerUserId: a.customer.user.id, amountCents: 100, description: "A's" }, a.headers)).status,
      ).toBe(201);
      const seenByB = (await (await app.request("/api/v1/invoices", { headers: b.headers })).json()) as {
        invoices: unknown[];
      };
      expect(seenByB.invoices).toHaveLength(0);
      const seenByA = (await (await app.request("/api/v1/invoices", { headers: a.headers })).json()) as {
        invoices: { description: string }[];
      };
      expect(seenByA.invoices.map((i) => i.description)).toEqual(["A's"]);
      // B's clerk cannot act in A's tenant at all.
      expect(
        (await app.request("/api/v1/invoices", { headers: { ...b.headers, "x-tenant-id": a.tenant.id } })).status,
      ).toBe(403);
    }));
});

describe("the rollback fixture", () => {
  it("leaves nothing behind", async () => {
    const marker = `rolled-back-${randomUUID()}`;
    await withRollback(sdk, async () => {
      const { customer, headers } = await billingTenant();
      expect(
        (await post({ customerUserId: customer.user.id, amountCents: 100, description: marker }, headers)).status,
      ).toBe(201);
    });
    const [row] = await owner<
      { n: number }[]
    >`select count(*)::int as n from invoices.invoices where description = ${marker}`;
    expect(row!.n).toBe(0);
  });
});
