import { defineErrors } from "../../errors.js";

export const AuthErrors = defineErrors({
  SESSION_REQUIRED: { status: 401, message: "Sign in first: this needs a valid session cookie or bearer token" },
  TENANT_HEADER_INVALID: { status: 400, message: "X-Tenant-Id must be a tenant id (uuid)" },
  NOT_A_MEMBER: {
    status: 403,
    message:
      "You are not a member of this tenant (now): choose another with X-Tenant-Id or /api/auth/organization/set-active",
  },
  ORIGIN_NOT_TRUSTED: {
    status: 403,
    message: "A write with the session cookie must come from a trusted origin (send Origin), or use a bearer token",
  },
  TENANT_SLUG_TAKEN: { status: 409, message: "A tenant with this slug exists already" },
  TENANT_NOT_CREATED: { status: 500, message: "The tenant could not be created" },
  RATE_LIMITED: { status: 429, message: "Too many attempts from this client; wait for Retry-After seconds" },
  WEAK_SECRET: { status: 500, message: "BETTER_AUTH_SECRET must be at least 32 characters in production" },
});
