import { defineModule } from "../../db/module.js";
import { routerOf } from "../../db/module-context.js";
import { createAuthModule, type AuthModuleOptions } from "./service.js";

/** What the auth module needs from the modules created before it, and its options. */
export type AuthDependencies = Omit<AuthModuleOptions, "router" | "logger">;
export {
  accounts,
  authSchema,
  invitations,
  jwks,
  members,
  organizations,
  rateLimits,
  sessions,
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

/**
 * The auth module's descriptor: the control plane — identities, sessions, tenants (organizations) —
 * which stays on main; every other module's rows refer to it.
 */
export const authModule = defineModule({
  name: "auth",
  schema: "auth",
  tables: {
    users: "control-plane",
    sessions: "control-plane",
    accounts: "control-plane",
    verifications: "control-plane",
    organizations: "control-plane",
    members: "control-plane",
    invitations: "control-plane",
    jwks: "control-plane",
    two_factors: "control-plane",
    rate_limits: "control-plane",
    session_revocations: "control-plane",
  },
  tenants: { table: "organizations" },
  crossKeys: [
    // The platform's rows about a tenant go with it.
    { name: "tenant_placements_tenant_fk", from: "platform.tenant_placements.tenant_id", to: "auth.organizations.id", onDelete: "cascade" },
    { name: "tenant_moves_tenant_fk", from: "platform.tenant_moves.tenant_id", to: "auth.organizations.id", onDelete: "cascade" },
  ],
  create: (context, deps: AuthDependencies) => createAuthModule({ router: routerOf(context), logger: context.logger, ...deps }),
});
