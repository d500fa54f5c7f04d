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
