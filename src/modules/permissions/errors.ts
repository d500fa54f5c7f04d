/**
 * The permissions module's error codes: thrown by its verbs, mapped to problem+json by the app.
 */
import { defineErrors } from "../../errors.js";

export const PermissionsErrors = defineErrors({
  ROLE_NOT_FOUND: { status: 404, message: "Role not found" },
  ROLE_NAME_TAKEN: { status: 409, message: "A role with this name already exists in this scope" },
  ROLE_OUT_OF_SCOPE: {
    status: 403,
    message: "This role belongs to another scope: global roles are managed by platform administrators",
  },
  BUILT_IN_ROLE: { status: 403, message: "Built-in roles cannot be changed or deleted" },
  INHERITANCE_CYCLE: { status: 400, message: "This inheritance would create a cycle" },
  INVALID_PERMISSION: {
    status: 400,
    message: "A permission is `resource:action` (lowercase; `*` as the last segment is a wildcard) or `*`",
  },
  INVALID_TENANT: { status: 400, message: "A tenant is identified by its uuid" },
  ASSIGNMENT_NOT_FOUND: { status: 404, message: "Assignment not found" },
  LAST_OWNER: {
    status: 409,
    message:
      "This is the tenant's last owner: only a platform administrator can remove it (make someone else owner first)",
  },
  USER_NOT_IN_TENANT: { status: 404, message: "No member of this tenant has this id: invite the user first" },
  UNKNOWN_MEMBER_ROLE: { status: 400, message: "This organization role has no built-in counterpart" },
  PERMISSION_DENIED: { status: 403, message: "You do not have the permission this needs" },
  INVALID_CURSOR: {
    status: 400,
    message:
      "The cursor is not valid here: pass the nextCursor of a previous page of the same list, in the same tenant",
  },
  INVALID_LIMIT: { status: 400, message: "limit is a whole number from 1 to 200" },
});

/** A route's permission the user does not hold (the guard's 403, and the check route's). */
export function permissionDenied(permission: string, tenant: string | null) {
  return PermissionsErrors.PERMISSION_DENIED({ permission, tenant }, `Missing permission '${permission}'`);
}
