/**
 * `/api/v1/permissions` (roles, their grants and parents, assignments, checks) and `/api/v1/me`
 * (`GET /permissions`). Every route acts in the request's tenant (`c.get("tenant")`), or in the global
 * scope when there is none — where only global assignments count, i.e. platform administrators.
 *
 * Permissions needed: `roles:read` (read roles and assignments), `roles:write` (create, change and
 * delete roles, their grants and parents), `roles:assign` (assign and unassign), `permissions:check`
 * (check another user), `permissions:read:self` (check oneself, `GET /me/permissions`).
 * Nobody hands out what they do not hold: granting permissions, inheriting a role or assigning one
 * needs every permission it carries (so a tenant admin cannot make anyone an owner).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { createRoutes, errorResponses, jsonBody, jsonResponse, tenantOf, userOf } from "../../http/kit/index.js";
import { permissionDenied, PermissionsErrors } from "./errors.js";
import type { PermissionsModule } from "./api.js";
import type { Assignment, Role } from "./model.js";
import { PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX } from "./page.js";

export interface PermissionsRoutesOptions {
  permissions: PermissionsModule;
  /**
   * Whether a user is a member of a tenant: a tenant's roles are assigned to its members only (a role
   * held in a tenant by someone outside it is a grant nobody asked for). Without it, not checked.
   */
  isMember?: (userId: string, tenantId: string) => Promise<boolean>;
}

const Permission = z
  .string()
  .min(1)
  .max(200)
  .openapi({ example: "audit:read", description: "`resource:action`; `*` as the last segment is a wildcard" });
const RoleName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9 _.-]*$/, "letters, digits, space, '_', '.', '-'");
const RoleRef = z.string().min(1).max(64).openapi({ description: "A role id, or its name", example: "auditor" });

const RoleSchema = z
  .object({
    id: z.uuid(),
    tenantId: z.uuid().nullable(),
    name: z.string(),
    description: z.string().nullable(),
    builtIn: z.boolean(),
    permissions: z.array(z.string()),
    inherits: z.array(z.uuid()),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Role");

const AssignmentSchema = z
  .object({
    id: z.uuid(),
    userId: z.uuid(),
    roleId: z.uuid(),
    roleName: z.string(),
    tenantId: z.uuid().nullable(),
    assignedBy: z.uuid().nullable(),
    createdAt: z.string(),
  })
  .openapi("RoleAssignment");

const RoleParams = z.object({ roleId: RoleRef });
/** Keyset paging of the list routes (src/modules/permissions/page.ts). */
const PageQuery = z.object({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(PAGE_LIMIT_MAX)
    .default(PAGE_LIMIT_DEFAULT)
    .openapi({ description: `Rows per page: 1–${PAGE_LIMIT_MAX}, default ${PAGE_LIMIT_DEFAULT}`, example: 50 }),
  cursor: z.string().min(1).max(1024).optional().openapi({
    description:
      "`nextCursor` of the previous page (opaque); valid only for the same list in the same tenant, else 400 INVALID_CURSOR",
  }),
});
const NextCursor = z
  .string()
  .nullable()
  .openapi({ description: "Pass it as `cursor` for the next page; null on the last page" });

const toRole = (role: Role) => ({
  ...role,
  createdAt: role.createdAt.toISOString(),
  updatedAt: role.updatedAt.toISOString(),
});
const toAssignment = (a: Assignment) => ({ ...a, createdAt: a.createdAt.toISOString() });

/** `/api/v1/permissions` routes. */
export function createPermissionsRoutes({ permissions, isMember }: PermissionsRoutesOptions) {
  const app = createRoutes();
  const read = permissions.requirePermission("roles:read");
  const write = permissions.requirePermission("roles:write");
  const assign = permissions.requirePermission("roles:assign");
  const tags = ["Permissions"];

  return app
    .openapi(
      createRoute({
        method: "get",
        path: "/roles",
        tags,
        summary: "List roles: the tenant's, then the global ones, each by name; paged",
        middleware: [read] as const,
        request: { query: PageQuery },
        responses: {
          200: jsonResponse(z.object({ roles: z.array(RoleSchema), nextCursor: NextCursor }), "One page of roles"),
          ...errorResponses(400, 401, 403, 404),
        },
      }),
      async (c) => {
        const page = await permissions.listRolesPage({ tenant: tenantOf(c), ...c.req.valid("query") });
        return c.json({ roles: page.roles.map(toRole), nextCursor: page.nextCursor }, 200);
      },
    )

    .openapi(
      createRoute({
        method: "post",
        path: "/roles",
        tags,
        summary: "Create a role in the current scope (the tenant's, or global)",
        middleware: [write] as const,
        request: {
          body: jsonBody(
            z.object({
              name: RoleName,
              description: z.string().max(500).nullable().optional(),
              permissions: z.array(Permission).max(200).default([]),
              inherits: z.array(RoleRef).max(50).default([]),
            }),
          ),
        },
        responses: { 201: jsonResponse(RoleSchema, "Created"), ...errorResponses(400, 401, 403, 404, 409) },
      }),
      async (c) => {
        const input = c.req.valid("json");
        const tenant = tenantOf(c);
        const closure = await permissions.rolePermissionClosure(input.inherits, { tenant });
        await permissions.assertHolds(userOf(c).id, [...input.permissions, ...closure], { tenant });
        return c.json(toRole(await permissions.createRole(input, { tenant })), 201);
      },
    )

    .openapi(
      createRoute({
        method: "get",
        path: "/roles/{roleId}",
        tags,
        summary: "Read a role",
        middleware: [read] as const,
        request: { params: RoleParams },
        responses: { 200: jsonResponse(RoleSchema, "The role"), ...errorResponses(400, 401, 403, 404) },
      }),
      async (c) => c.json(toRole(await permissions.getRole(c.req.valid("param").roleId, { tenant: tenantOf(c) })), 200),
    )

    .openapi(
      createRoute({
        method: "patch",
        path: "/roles/{roleId}",
        tags,
        summary: "Rename a role or change its description",
        middleware: [write] as const,
        request: {
          params: RoleParams,
          body: jsonBody(
            z.object({ name: RoleName.optional(), description: z.string().max(500).nullable().optional() }),
          ),
        },
        responses: { 200: jsonResponse(RoleSchema, "Updated"), ...errorResponses(400, 401, 403, 404, 409) },
      }),
      async (c) => {
        const role = await permissions.updateRole(c.req.valid("param").roleId, c.req.valid("json"), {
          tenant: tenantOf(c),
        });
        return c.json(toRole(role), 200);
      },
    )

    .openapi(
      createRoute({
        method: "delete",
        path: "/roles/{roleId}",
        tags,
        summary: "Delete a role (its grants, parents links and assignments go with it)",
        middleware: [write] as const,
        request: { params: RoleParams },
        responses: { 204: { description: "Deleted" }, ...errorResponses(400, 401, 403, 404) },
      }),
      async (c) => {
        await permissions.deleteRole(c.req.valid("param").roleId, { tenant: tenantOf(c) });
        return c.body(null, 204);
      },
    )

    .openapi(
      createRoute({
        method: "get",
        path: "/roles/{roleId}/permissions",
        tags,
        summary: "A role's permissions: granted directly, and effective (parents included)",
        middleware: [read] as const,
        request: { params: RoleParams },
        responses: {
          200: jsonResponse(
            z.object({ permissions: z.array(z.string()), effective: z.array(z.string()) }),
            "Permissions",
          ),
          ...errorResponses(400, 401, 403, 404),
        },
      }),
      async (c) => {
        const tenant = tenantOf(c);
        const role = await permissions.getRole(c.req.valid("param").roleId, { tenant });
        const effective = await permissions.rolePermissionClosure([role.id], { tenant });
        return c.json({ permissions: role.permissions, effective }, 200);
      },
    )

    .openapi(
      createRoute({
        method: "post",
        path: "/roles/{roleId}/permissions",
        tags,
        summary: "Grant permissions to a role",
        middleware: [write] as const,
        request: { params: RoleParams, body: jsonBody(z.object({ permissions: z.array(Permission).min(1).max(200) })) },
        responses: { 200: jsonResponse(RoleSchema, "The role"), ...errorResponses(400, 401, 403, 404) },
      }),
      async (c) => {
        const tenant = tenantOf(c);
        const { permissions: granted } = c.req.valid("json");
        await permissions.assertHolds(userOf(c).id, granted, { tenant });
        return c.json(
          toRole(await permissions.grantPermissions(c.req.valid("param").roleId, granted, { tenant })),
          200,
        );
      },
    )

    .openapi(
      createRoute({
        method: "delete",
        path: "/roles/{roleId}/permissions/{permission}",
        tags,
        summary: "Revoke one permission from a role (URL-encode the permission)",
        middleware: [write] as const,
        request: { params: z.object({ roleId: RoleRef, permission: Permission }) },
        responses: { 200: jsonResponse(RoleSchema, "The role"), ...errorResponses(400, 401, 403, 404) },
      }),
      async (c) => {
        const { roleId, permission } = c.req.valid("param");
        return c.json(toRole(await permissions.revokePermission(roleId, permission, { tenant: tenantOf(c) })), 200);
      },
    )

    .openapi(
      createRoute({
        method: "put",
        path: "/roles/{roleId}/parents",
        tags,
        summary: "Replace the roles this role inherits from (a cycle is refused, naming it)",
        middleware: [write] as const,
        request: { params: RoleParams, body: jsonBody(z.object({ parents: z.array(RoleRef).max(50) })) },
        responses: { 200: jsonResponse(RoleSchema, "The role"), ...errorResponses(400, 401, 403, 404) },
      }),
      async (c) => {
        const tenant = tenantOf(c);
        const { parents } = c.req.valid("json");
        await permissions.assertHolds(userOf(c).id, await permissions.rolePermissionClosure(parents, { tenant }), {
          tenant,
        });
        return c.json(toRole(await permissions.setRoleParents(c.req.valid("param").roleId, parents, { tenant })), 200);
      },
    )

    .openapi(
      createRoute({
        method: "get",
        path: "/assignments",
        tags,
        summary: "Assignments made in the current scope, optionally of one user, oldest first; paged",
        middleware: [read] as const,
        request: { query: PageQuery.extend({ userId: z.uuid().optional() }) },
        responses: {
          200: jsonResponse(
            z.object({ assignments: z.array(AssignmentSchema), nextCursor: NextCursor }),
            "One page of assignments",
          ),
          ...errorResponses(400, 401, 403, 404),
        },
      }),
      async (c) => {
        const page = await permissions.listAssignmentsPage({ tenant: tenantOf(c), ...c.req.valid("query") });
        return c.json({ assignments: page.assignments.map(toAssignment), nextCursor: page.nextCursor }, 200);
      },
    )

    .openapi(
      createRoute({
        method: "post",
        path: "/assignments",
        tags,
        summary: "Assign a role to a user in the current scope (idempotent)",
        middleware: [assign] as const,
        request: { body: jsonBody(z.object({ userId: z.uuid(), role: RoleRef })) },
        responses: { 201: jsonResponse(AssignmentSchema, "Assigned"), ...errorResponses(400, 401, 403, 404) },
      }),
      async (c) => {
        const tenant = tenantOf(c);
        const { userId, role } = c.req.valid("json");
        if (tenant !== null && isMember && !(await isMember(userId, tenant)))
          throw PermissionsErrors.USER_NOT_IN_TENANT({ userId });
        await permissions.assertHolds(userOf(c).id, await permissions.rolePermissionClosure([role], { tenant }), {
          tenant,
        });
        return c.json(toAssignment(await permissions.assignRole(userId, role, { tenant })), 201);
      },
    )

    .openapi(
      createRoute({
        method: "delete",
        path: "/assignments/{assignmentId}",
        tags,
        summary: "Remove an assignment of the current scope",
        middleware: [assign] as const,
        request: { params: z.object({ assignmentId: z.uuid() }) },
        responses: { 204: { description: "Removed" }, ...errorResponses(400, 401, 403, 404) },
      }),
      async (c) => {
        await permissions.removeAssignment(c.req.valid("param").assignmentId, { tenant: tenantOf(c) });
        return c.body(null, 204);
      },
    )

    .openapi(
      createRoute({
        method: "post",
        path: "/check",
        tags,
        summary: "Check one or many permissions of a user (yourself by default) in the current scope",
        request: {
          body: jsonBody(
            z.object({
              userId: z.uuid().optional(),
              permissions: z.array(Permission).min(1).max(100),
            }),
          ),
        },
        responses: {
          200: jsonResponse(
            z.object({
              userId: z.uuid(),
              tenantId: z.uuid().nullable(),
              allowed: z.boolean().openapi({ description: "true when every permission is held" }),
              results: z.record(z.string(), z.boolean()),
            }),
            "Results",
          ),
          ...errorResponses(400, 401, 403, 404),
        },
      }),
      async (c) => {
        const user = userOf(c);
        const tenant = tenantOf(c);
        const input = c.req.valid("json");
        const subject = input.userId ?? user.id;
        const needed = subject === user.id ? "permissions:read:self" : "permissions:check";
        if (!(await permissions.can(user.id, needed, { tenant }))) {
          throw permissionDenied(needed, tenant);
        }
        // A tenant admin checks its own members only: what anyone else holds (a platform
        // administrator's global roles, say) is none of the tenant's business.
        if (subject !== user.id && tenant !== null && isMember && !(await isMember(subject, tenant))) {
          throw PermissionsErrors.USER_NOT_IN_TENANT({ userId: subject });
        }
        const results = await permissions.checkMany(subject, input.permissions, { tenant });
        return c.json(
          { userId: subject, tenantId: tenant, allowed: Object.values(results).every(Boolean), results },
          200,
        );
      },
    );
}
