export {
  accounts,
  authSchema,
  invitations,
  jwks,
  members,
  organizations,
  rateLimits,
  sessions,
  tenantPlacements,
  twoFactors,
  users,
  verifications,
} from "./schema.js";
export { createAuthModule, type AuthModule, type AuthModuleOptions } from "./service.js";
export { CLIENT_IP_HEADER, type AuthOptions } from "./better-auth.js";
export { requireSession } from "./middleware.js";
export { createAuthRoutes, createTokenRoutes } from "./routes.js";
export { AuthErrors } from "./errors.js";
export { hashPassword, verifyPassword, OWASP_SCRYPT, TEST_ONLY_SCRYPT, type PasswordCost } from "./password.js";
