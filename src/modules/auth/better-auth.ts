/**
 * The better-auth instance: its drizzle adapter is given the module's ambient handle, so every auth
 * write joins the unit of work (better-auth's own transaction becomes a savepoint of ours). Mail goes
 * to the email outbox, never to a provider, and every hook that writes does so in the same unit.
 */
import { betterAuth } from "better-auth";
import { drizzleAdapter } from "better-auth/adapters/drizzle";
import { admin, bearer, jwt, openAPI, organization, twoFactor } from "better-auth/plugins";
import { shareBetterAuthStorage } from "./shared-storage.js";
import { declareCrossDatabaseUnit, noteUnavailable } from "../../db/unit-of-work.js";
import { transientError } from "../../errors.js";
import type { ModuleContext } from "../../db/module.js";
import type { TenantPlacements } from "../../db/tenant-placement.js";
import type { AuditEventInput, AuditModule } from "../audit/index.js";
import type { EmailModule } from "../email/index.js";
import type { PermissionsModule } from "../permissions/index.js";
import { createAuditBeforeHooks, createAuditHooks, guarded } from "./hooks.js";
import { closeTenant, leaveTenant, MEMBERSHIP_MIRROR } from "./tenant-exits.js";
import { createPlacementHooks } from "./tenant-placement-hooks.js";
import { OWASP_SCRYPT, type PasswordCost } from "./password.js";
import { passwordFunctions } from "./password-work.js";
import type { Revocations } from "./revocations.js";
import * as tables from "./schema.js";

export const DEFAULT_COOKIE_CACHE_SECONDS = 300;
/** A session ends this long after sign-in however it is used (ASVS 7.3.2): 30 days. */
export const DEFAULT_SESSION_MAX_AGE_SECONDS = 30 * 24 * 3600;
/** Lifetime of the JWTs `/api/auth/token` mints for other services. */
export const DEFAULT_JWT_TTL_SECONDS = 300;
/** Request header carrying the client address to better-auth; set by the app, never trusted from clients. */
export const CLIENT_IP_HEADER = "x-sv-client-ip";
const COOKIE_PREFIX = "sv";

/** better-auth's session-token cookie name for these options (`__Secure-` when cookies are secure). */
export function sessionCookieName(production: boolean): string {
  return `${production ? "__Secure-" : ""}${COOKIE_PREFIX}.session_token`;
}

/** Every cookie that carries a session: the token, the signed cookie-cache copy, the remember flag. */
export function sessionCookieNames(production: boolean): { token: string; cache: string; all: string[] } {
  const name = (suffix: string) => `${production ? "__Secure-" : ""}${COOKIE_PREFIX}.${suffix}`;
  const token = name("session_token");
  const cache = name("session_data");
  return { token, cache, all: [token, cache, name("dont_remember")] };
}

export interface AuthOptions {
  /** At least 32 characters in production. */
  secret: string;
  /** Public origin of the API, e.g. `https://api.example.com`. */
  baseUrl: string;
  /** Browser origins allowed to call auth endpoints with cookies (others get 403). */
  trustedOrigins?: string[];
  /** Refuse sign-in until the email is verified. Default: true in production, false elsewhere. */
  requireEmailVerification?: boolean;
  /** Rate limiting of auth routes (credential routes counted in the database, across instances). Default on. */
  rateLimit?: boolean;
  /** Password hashes in flight at once; other requests that hash wait, holding no connection. Default: the cores. */
  hashingConcurrency?: number;
  /** Password hashing cost. Default OWASP scrypt; a cheaper cost is refused in production. */
  passwordCost?: PasswordCost;
  /** Seconds a signed session cookie answers without a database read. Default 300. */
  cookieCacheSeconds?: number;
  /** Lifetime of the JWTs minted for other services (`/api/auth/token`). Default 300. */
  jwtTtlSeconds?: number;
  /**
   * Absolute session lifetime: a session ends this long after sign-in, however often it is used.
   * Default 30 days. (Inactivity: a session unused for 7 days ends — better-auth's expiry, extended
   * at most once a day while in use.)
   */
  sessionMaxAgeSeconds?: number;
  /**
   * The session cookie's SameSite. Default `lax`: sent to other origins of the same site
   * (`app.example.com` → `api.example.com`). `none` sends it cross-site too (a frontend on another
   * registrable domain), which browsers allow only with `Secure` — so it is always Secure then (https,
   * or http://localhost) — and which Safari and Firefox may still block as a third-party cookie. The
   * Origin checks (TRUSTED_ORIGINS) stay the CSRF defence either way.
   */
  cookieSameSite?: "lax" | "strict" | "none";
}

/** The innermost cause's message: what failed, without the query text and parameters wrappers add. */
function messageOf(error: unknown): string {
  let cause = error;
  while ((cause as { cause?: unknown })?.cause) cause = (cause as { cause?: unknown }).cause;
  return cause instanceof Error
    ? `${(cause as { code?: string }).code ?? cause.name}: ${cause.message}`
    : String(cause);
}

function noteDatabaseFailures(values: unknown[]): void {
  for (const value of values) {
    const transient = transientError(value);
    if (transient) noteUnavailable(transient);
  }
}

export interface BetterAuthDependencies {
  context: ModuleContext;
  audit: AuditModule;
  permissions: PermissionsModule;
  email: EmailModule;
  revocations: Revocations;
  production: boolean;
  placements: TenantPlacements;
}

export function createBetterAuth(options: AuthOptions, deps: BetterAuthDependencies) {
  const { context, audit, permissions, email, revocations, production, placements } = deps;
  const { logger } = context;

  /** A membership change: the tenant-scoped role follows it in permissions, and it is audited. */
  const mirrorMember = (
    action: string,
    tenantId: string,
    userId: string,
    role: string | null,
    event: Pick<AuditEventInput, "actor" | "metadata" | "changes">,
  ) =>
    guarded(async () => {
      declareCrossDatabaseUnit(MEMBERSHIP_MIRROR);
      await permissions.syncMemberRole({ userId, tenantId, role });
      await audit.recordAuditEvent({ action, tenantId, target: { type: "user", id: userId }, ...event });
    });

  /** One audit event from a better-auth callback: its failure fails the unit of work. */
  const audited = (event: AuditEventInput) => guarded(() => audit.recordAuditEvent(event));

  /** Account mail to a user (verification, reset): an outbox row in the unit of work, never a send. */
  const accountMail = (template: string, user: { id: string; email: string; name: string }, url: string) =>
    guarded(async () => {
      await email.enqueueEmail({
        userId: user.id,
        to: user.email,
        template,
        category: "account",
        data: { name: user.name, url },
      });
    });
  const cost = options.passwordCost ?? OWASP_SCRYPT;
  const requireEmailVerification = options.requireEmailVerification ?? production;

  const auth = betterAuth({
    appName: "sv-sdk",
    baseURL: options.baseUrl,
    basePath: "/api/auth",
    secret: options.secret,
    trustedOrigins: options.trustedOrigins ?? [],
    database: drizzleAdapter(context.db(), {
      provider: "pg",
      // better-auth's transaction runs on the ambient handle, i.e. as a savepoint of the unit of work.
      transaction: true,
      schema: {
        user: tables.users,
        session: tables.sessions,
        account: tables.accounts,
        verification: tables.verifications,
        organization: tables.organizations,
        member: tables.members,
        invitation: tables.invitations,
        jwks: tables.jwks,
        twoFactor: tables.twoFactors,
        rateLimit: tables.rateLimits,
      },
    }),
    advanced: {
      database: { generateId: "uuid" },
      cookiePrefix: COOKIE_PREFIX,
      useSecureCookies: production,
      defaultCookieAttributes: {
        httpOnly: true,
        sameSite: options.cookieSameSite ?? "lax",
        secure: production || options.cookieSameSite === "none",
      },
      // better-auth turns both checks off when it detects a test runner; they are part of what our
      // tests must prove, so they are on everywhere.
      disableOriginCheck: false,
      disableCSRFCheck: false,
      // The app sets this header from the socket (or a trusted proxy), replacing whatever the client
      // sent: rate limits keyed on a client-supplied X-Forwarded-For could be dodged at will.
      ipAddress: { ipAddressHeaders: [CLIENT_IP_HEADER] },
    },
    logger: {
      level: "warn",
      log: (level, message, ...args) => {
        noteDatabaseFailures(args);
        // An error's own message only: a driver error wrapped by drizzle carries the query's parameters.
        const fields = args.length ? { details: args.map((a) => (a instanceof Error ? messageOf(a) : a)) } : {};
        if (level === "error") logger.error(`better-auth: ${message}`, fields);
        else if (level === "warn") logger.warn(`better-auth: ${message}`, fields);
        else logger.debug(`better-auth: ${message}`, fields);
      },
    },
    // A failure that is not one of better-auth's own answers (a database error above all) is thrown
    // to the app, which maps it once: 503 with Retry-After when the database is down, frozen or busy,
    // else a 500 logged without the query's parameters. (Otherwise better-call prints the raw error,
    // bound parameters — password hashes included — to the console and answers a bare 500.)
    onAPIError: { throw: true },
    emailAndPassword: {
      enabled: true,
      requireEmailVerification,
      // Sign-up never signs in: a duplicate email then gets the same answer as a new one (no enumeration).
      autoSignIn: false,
      minPasswordLength: 8,
      maxPasswordLength: 128,
      // Answers computed before the unit of work opened when the request's route hashes (password-work.ts).
      password: passwordFunctions(cost),
      revokeSessionsOnPasswordReset: true,
      sendResetPassword: async ({ user, url }) => accountMail("reset-password", user, url),
      onPasswordReset: async ({ user }) =>
        guarded(async () => {
          await revocations.revokeUser(user.id);
          await audit.recordAuditEvent({
            action: "user.password_reset_completed",
            actor: { type: "user", id: user.id },
            target: { type: "user", id: user.id },
          });
        }),
    },
    emailVerification: {
      sendOnSignUp: true,
      autoSignInAfterVerification: false,
      sendVerificationEmail: async ({ user, url }) => accountMail("verify-email", user, url),
      afterEmailVerification: async (user) =>
        audited({
          action: "user.email_verified",
          actor: { type: "user", id: user.id },
          target: { type: "user", id: user.id },
        }),
    },
    session: {
      cookieCache: { enabled: true, maxAge: options.cookieCacheSeconds ?? DEFAULT_COOKIE_CACHE_SECONDS },
    },
    // Limits are enforced in front of the request's unit of work (rate-limit.ts): better-auth's own
    // limiter runs inside it and would hold the request's connection while it asks for another.
    rateLimit: { enabled: false },
    databaseHooks: {
      user: {
        update: {
          // Two-factor is on once the first TOTP code verifies and off after /two-factor/disable:
          // both are this field changing, inside better-auth's savepoint of the request's unit.
          before: async (data, ctx) => {
            if (typeof data.twoFactorEnabled !== "boolean") return;
            const userId = ctx?.context.session?.user.id;
            await audited({
              action: data.twoFactorEnabled ? "user.two_factor_enabled" : "user.two_factor_disabled",
              actor: userId ? { type: "user", id: userId } : undefined,
              target: userId ? { type: "user", id: userId } : undefined,
            });
          },
        },
        create: {
          // Runs inside the unit of work (after better-auth's savepoint): the default role and the
          // audit event commit with the user, or nothing does.
          after: async (user) =>
            guarded(async () => {
              await permissions.assignDefaultRole(user.id);
              await audit.recordAuditEvent({
                action: "user.signed_up",
                actor: { type: "user", id: user.id },
                target: { type: "user", id: user.id },
                metadata: { email: user.email },
              });
            }),
        },
      },
    },
    hooks: { before: createAuditBeforeHooks(deps), after: createAuditHooks(deps) },
    plugins: [
      organization({
        sendInvitationEmail: async ({ id, email: to, organization: org, inviter }) =>
          guarded(async () => {
            await email.enqueueEmail({
              to,
              tenantId: org.id,
              template: "invitation",
              category: "account",
              data: {
                inviterName: inviter.user.name,
                organizationName: org.name,
                url: `${options.baseUrl}/api/auth/organization/accept-invitation?invitationId=${id}`,
              },
            });
          }),
        organizationHooks: {
          // A new tenant is placed before its first row (tenant-placement-hooks.ts).
          ...createPlacementHooks(placements),
          afterCreateOrganization: async ({ organization: org, user }) =>
            guarded(async () => {
              const placement = await placements.placementOf(org.id);
              await audit.recordAuditEvent({
                action: "tenant.created",
                tenantId: org.id,
                actor: { type: "user", id: user.id },
                target: { type: "tenant", id: org.id },
                metadata: { name: org.name, slug: org.slug, placement },
              });
            }),
          afterAddMember: async ({ member, organization: org }) =>
            mirrorMember("member.added", org.id, member.userId, member.role, { metadata: { role: member.role } }),
          afterAcceptInvitation: async ({ member, organization: org, invitation }) =>
            mirrorMember("member.added", org.id, member.userId, member.role, {
              actor: { type: "user", id: member.userId },
              metadata: { role: member.role, invitationId: invitation.id },
            }),
          afterCreateInvitation: async ({ invitation, organization: org, inviter }) =>
            audited({
              action: "member.invited",
              tenantId: org.id,
              actor: { type: "user", id: inviter.id },
              target: { type: "invitation", id: invitation.id },
              metadata: { email: invitation.email, role: invitation.role },
            }),
          afterRemoveMember: async ({ member, organization: org }) =>
            guarded(async () => {
              await leaveTenant(deps, member.userId, org.id, "member.removed");
              await audit.recordAuditEvent({
                action: "member.removed",
                tenantId: org.id,
                target: { type: "user", id: member.userId },
              });
            }),
          beforeDeleteOrganization: async ({ organization: org, user }) =>
            guarded(async () => {
              await closeTenant(deps, org.id);
              await audit.recordAuditEvent({
                action: "tenant.deleted",
                tenantId: org.id,
                actor: { type: "user", id: user.id },
                target: { type: "tenant", id: org.id },
                metadata: { name: org.name, slug: org.slug },
              });
            }),
          afterUpdateMemberRole: async ({ member, previousRole, organization: org }) =>
            mirrorMember("member.role_changed", org.id, member.userId, member.role, {
              changes: { before: { role: previousRole }, after: { role: member.role } },
            }),
        },
      }),
      admin(),
      jwt({
        jwt: {
          issuer: options.baseUrl,
          audience: options.baseUrl,
          // Short-lived: a service that verifies it offline honours a sign-out through the
          // revocation list (GET /api/v1/tokens/revocations) or at the latest when it expires.
          expirationTime: `${options.jwtTtlSeconds ?? DEFAULT_JWT_TTL_SECONDS}s`,
          // sub is the user; sid the session (revoked with it), tid the tenant it acted in.
          definePayload: ({ user, session }) => ({
            sid: session.id,
            tid: (session as { activeOrganizationId?: string | null }).activeOrganizationId ?? null,
            email: user.email,
          }),
        },
        // Otherwise every session read signs a JWT (reading jwks): a query on the hot path
        // (better-auth#3954). Services that want a JWT ask /api/auth/token.
        disableSettingJwtHeader: true,
      }),
      bearer({ requireSignature: true }),
      twoFactor({ issuer: "sv-sdk" }),
      // Only its document generator: /openapi.json merges it; /docs renders it without a CDN script.
      openAPI({ disableDefaultReference: true }),
    ],
  });
  // better-auth has made its global by now; its AsyncLocalStorage instances are created on first use.
  shareBetterAuthStorage();
  return auth;
}

export type BetterAuth = ReturnType<typeof createBetterAuth>;
