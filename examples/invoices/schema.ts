/**
 * The example service's own table, in a schema of its own, with real foreign keys into sv-sdk's
 * `auth` schema (its tenant and its customer).
 */
import { integer, pgSchema, text, timestamp, uuid } from "drizzle-orm/pg-core";

export const invoicesSchema = pgSchema("invoices");

export const invoices = invoicesSchema.table("invoices", {
  id: uuid("id").primaryKey().defaultRandom(),
  tenantId: uuid("tenant_id").notNull(),
  customerUserId: uuid("customer_user_id").notNull(),
  amountCents: integer("amount_cents").notNull(),
  description: text("description").notNull(),
  createdBy: uuid("created_by"),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});

/**
 * The schema's migration, run as the database owner after sv-sdk's own (`npm run db:migrate`). A real
 * service would generate it with drizzle-kit from schema.ts; it is spelled out here to show the parts
 * that matter: the foreign keys into `auth`, the grants to the runtime role, and row-level security on
 * the tenant like sv-sdk's own tables.
 */
export const INVOICES_MIGRATION = `
create schema if not exists invoices;
create table if not exists invoices.invoices (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references auth.organizations(id) on delete cascade,
  customer_user_id uuid not null references auth.users(id) on delete restrict,
  amount_cents integer not null check (amount_cents > 0),
  description text not null,
  created_by uuid references auth.users(id) on delete set null,
  created_at timestamptz not null default now()
);
grant usage on schema invoices to sv_app, sv_readonly;
grant select, insert, update, delete on invoices.invoices to sv_app;
grant select on invoices.invoices to sv_readonly;
alter table invoices.invoices enable row level security;
drop policy if exists invoices_tenant_isolation on invoices.invoices;
create policy invoices_tenant_isolation on invoices.invoices using (
  tenant_id::text = current_setting('sv.tenant_id', true) or current_setting('sv.tenant_id', true) = '*'
);
`;
