/**
 * The auth module's stateful parts, made once per SDK: the session feed, the better-auth instance,
 * the session and membership caches. Bad configuration fails here, before anything is made.
 */
import type { ModuleContext } from "../../db/module.js";
import type { TenantPlacements } from "../../db/tenant-placement.js";
import type { AuditModule } from "../audit/index.js";
import type { EmailModule } from "../email/index.js";
import type { PermissionsModule } from "../permissions/index.js";
import {
  createBetterAuth,
  DEFAULT_COOKIE_CACHE_SECONDS,
  DEFAULT_SESSION_MAX_AGE_SECONDS,
  sessionCookieName,
  sessionCookieNames,
  type AuthOptions,
} from "./better-auth.js";
import { createMemberships } from "./memberships.js";
import { OWASP_SCRYPT } from "./password.js";
import { createRevocations } from "./revocations.js";
import { createSessionCache } from "./session-cache.js";
import type { SessionTruthDependencies } from "./session-truth.js";

/** What the auth module needs from the modules created before it, and its options. */
export interface AuthDependencies {
  audit: AuditModule;
  permissions: PermissionsModule;
  email: EmailModule;
  options: AuthOptions;
  production: boolean;
  /** Where a new tenant (organization) goes: the platform places it before its first row is written. */
  placements: TenantPlacements;
}

export function createAuthParts(
  context: ModuleContext,
  { audit, permissions, email, options, production, placements }: AuthDependencies,
) {
  if (production && options.secret.length < 32) {
    throw new Error("The auth secret (BETTER_AUTH_SECRET) must be at least 32 characters in production");
  }
  const cost = options.passwordCost ?? OWASP_SCRYPT;
  if (production && (cost.ln < OWASP_SCRYPT.ln || cost.r < OWASP_SCRYPT.r)) {
    throw new Error("A password hashing cost below OWASP's scrypt minimum (N=2^17, r=8, p=1) is refused in production");
  }
  const revocations = createRevocations(context, options.cookieCacheSeconds ?? DEFAULT_COOKIE_CACHE_SECONDS);
  const auth = createBetterAuth(options, {
    context,
    audit,
    permissions,
    email,
    revocations,
    production,
    placements,
  });
  const sessionMaxAgeMs = (options.sessionMaxAgeSeconds ?? DEFAULT_SESSION_MAX_AGE_SECONDS) * 1000;
  const cache = createSessionCache(revocations, { sessionCookie: sessionCookieName(production), sessionMaxAgeMs });
  const memberships = createMemberships(context, revocations);
  const truth: SessionTruthDependencies = {
    auth,
    revocations,
    cache,
    cookies: sessionCookieNames(production),
    secure: production,
    sessionMaxAgeMs,
  };
  return {
    auth,
    revocations,
    cache,
    memberships,
    truth,
    cost,
    sessionMaxAgeMs,
    trustedOrigins: options.trustedOrigins ?? [],
  };
}

export type AuthParts = ReturnType<typeof createAuthParts>;
