/**
 * The `permissions` schema: roles (global when `tenant_id` is null, else scoped to one tenant), the
 * permission strings each role grants, role inheritance, user-role assignments per tenant, and the
 * materialized effective permissions per user and tenant.
 */
import { sql } from "drizzle-orm";
import { boolean, index, pgSchema, primaryKey, text, timestamp, unique, uuid } from "drizzle-orm/pg-core";

export const permissionsSchema = pgSchema("permissions");

export const roles = permissionsSchema.table(
  "roles",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: uuid("tenant_id"),
    name: text("name").notNull(),
    description: text("description"),
    builtIn: boolean("built_in").notNull().default(false),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  // One name per scope: a global "admin" and a tenant's "admin" may coexist, two global ones may not.
  (t) => [unique("roles_tenant_name_key").on(t.tenantId, t.name).nullsNotDistinct()],
);

export const rolePermissions = permissionsSchema.table(
  "role_permissions",
  {
    roleId: uuid("role_id")
      .notNull()
      .references(() => roles.id, { onDelete: "cascade" }),
    permission: text("permission").notNull(),
  },
  (t) => [primaryKey({ columns: [t.roleId, t.permission] })],
);

export const roleInheritance = permissionsSchema.table(
  "role_inheritance",
  {
    roleId: uuid("role_id")
      .notNull()
      .references(() => roles.id, { onDelete: "cascade" }),
    inheritsRoleId: uuid("inherits_role_id")
      .notNull()
      .references(() => roles.id, { onDelete: "cascade" }),
  },
  (t) => [primaryKey({ columns: [t.roleId, t.inheritsRoleId] })],
);

export const userRoles = permissionsSchema.table(
  "user_roles",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    userId: uuid("user_id").notNull(),
    roleId: uuid("role_id")
      .notNull()
      .references(() => roles.id, { onDelete: "cascade" }),
    tenantId: uuid("tenant_id"),
    assignedBy: uuid("assigned_by"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    unique("user_roles_user_role_tenant_key").on(t.userId, t.roleId, t.tenantId).nullsNotDistinct(),
    // A tenant's assignments in keyset order (the paged list); also every lookup by tenant.
    index("user_roles_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
  ],
);

export const permissionCache = permissionsSchema.table(
  "permission_cache",
  {
    userId: uuid("user_id").notNull(),
    tenantId: uuid("tenant_id"),
    permissions: text("permissions").array().notNull().default(sql`'{}'::text[]`),
    computedAt: timestamp("computed_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [unique("permission_cache_user_tenant_key").on(t.userId, t.tenantId).nullsNotDistinct()],
);
