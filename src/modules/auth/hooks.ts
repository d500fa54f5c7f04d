/**
 * Auth events for the audit trail, and the guard that keeps better-auth's callbacks honest.
 * Never recorded: passwords, tokens, codes.
 */
import { APIError, createAuthMiddleware, getSessionFromCtx, isAPIError } from "better-auth/api";
import { markRollbackOnly, onRollback } from "../../db/unit-of-work.js";
import type { AuditModule } from "../audit/index.js";
import { leaveAllTenants, leaveTenant, restoreMemberRoles, type TenantExitsDependencies } from "./tenant-exits.js";

/** What the hooks write to: the audit trail, the session feed, and the ways out of a tenant. */
export interface AuthHookDependencies extends TenantExitsDependencies {
  audit: AuditModule;
}

/**
 * Runs a callback whose failure must fail the unit of work. better-auth logs and swallows errors of
 * some callbacks (the sign-up verification mail); marking the unit rollback-only means a failed
 * enqueue can never leave a user without their verification email row.
 */
export async function guarded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    markRollbackOnly(error);
    throw error;
  }
}

/** The member fields better-auth can sort or filter a member list by (anything else failed deep inside it: a 500). */
const MEMBER_FIELDS = new Set(["id", "organizationId", "userId", "role", "createdAt"]);

type AuthHookContext = Parameters<Parameters<typeof createAuthMiddleware>[0]>[0];

const bodyField = (ctx: AuthHookContext, field: string): string | undefined => {
  const value = (ctx.body as Record<string, unknown> | undefined)?.[field];
  return typeof value === "string" ? value : undefined;
};

/** better-auth `hooks.before`: events whose actor is only known before the endpoint runs. */
export function createAuditBeforeHooks(deps: AuthHookDependencies) {
  const { audit, revocations } = deps;
  return createAuthMiddleware(async (ctx) => {
    if (ctx.path === "/admin/remove-user") {
      // Before the user row goes (and cascades): every tenant assignment leaves audited, in this unit.
      const userId = bodyField(ctx, "userId");
      const session = await getSessionFromCtx(ctx).catch(() => null);
      if (!userId || !session) return;
      await leaveAllTenants(deps, userId, "user.deleted");
      // Sessions go with the user; cookie-cached copies of them must stop working everywhere too.
      await revocations.revokeUser(userId);
      // Other databases keep a copy of the user for their keys: it goes (and what refers to it there)
      // once this unit commits, through the outbox.
      await deps.context.removeCopies("users", [{ id: userId }]);
      await audit.recordAuditEvent({
        action: "user.deleted",
        actor: { type: "user", id: session.user.id },
        target: { type: "user", id: userId },
      });
      return;
    }
    if (ctx.path === "/revoke-session") {
      // better-auth answers `status: true` for any token; a token that is not one of the caller's
      // sessions must not be recorded as a revocation (nor drop the caller's cached sessions).
      const token = bodyField(ctx, "token");
      const session = await getSessionFromCtx(ctx).catch(() => null);
      const found = token ? await ctx.context.internalAdapter.findSession(token).catch(() => null) : null;
      if (!session || !found || found.user.id !== session.user.id) {
        throw new APIError("NOT_FOUND", { code: "SESSION_NOT_FOUND", message: "No session of yours has this token" });
      }
      return;
    }
    if (ctx.path === "/organization/list-members") {
      // better-auth answers a field its member model lacks with a 500 (BetterAuthError).
      const query = ctx.query as Record<string, unknown> | undefined;
      for (const [param, code] of [
        ["sortBy", "INVALID_SORT_FIELD"],
        ["filterField", "INVALID_FILTER_FIELD"],
      ] as const) {
        const field = query?.[param];
        if (field !== undefined && !MEMBER_FIELDS.has(String(field))) {
          throw new APIError("BAD_REQUEST", {
            code,
            message: `${param} must be one of ${[...MEMBER_FIELDS].join(", ")}`,
          });
        }
      }
      return;
    }
    if (ctx.path !== "/sign-out") return;
    // The session is gone after sign-out; this write joins the request's unit of work, so it is
    // rolled back with it should the sign-out fail.
    const session = await getSessionFromCtx(ctx).catch(() => null);
    if (!session) return;
    await revocations.revokeUser(session.user.id);
    await audit.recordAuditEvent({
      action: "user.signed_out",
      actor: { type: "user", id: session.user.id },
      target: { type: "session", id: session.session.id },
    });
  });
}

/**
 * better-auth `hooks.after`: one audit event per auth event, in the request's unit of work, and the
 * cookie-cache revocation of sessions that an event ended.
 */
export function createAuditHooks(deps: AuthHookDependencies) {
  const { audit, revocations } = deps;
  return createAuthMiddleware(async (ctx) => {
    const failed = isAPIError(ctx.context.returned);
    const actorId = ctx.context.session?.user.id;
    // better-auth sets the context's session for some endpoints only (not set-active, leave, …):
    // the request's own session names the actor then (read only where needed: get-session is hot).
    const requester = async () => actorId ?? (await getSessionFromCtx(ctx).catch(() => null))?.user.id;
    const actor = actorId ? ({ type: "user", id: actorId } as const) : undefined;
    const targetUser = bodyField(ctx, "userId");

    if (ctx.path === "/sign-in/email") {
      if (failed) {
        const error = ctx.context.returned as { body?: { code?: string }; statusCode?: number };
        // The refused request rolls back; its audit event must stay.
        await onRollback(() =>
          audit.recordAuditEvent({
            action: "user.sign_in_failed",
            actor: { type: "system" },
            metadata: { email: bodyField(ctx, "email"), reason: error.body?.code ?? String(error.statusCode) },
          }),
        );
        return;
      }
      const signedIn = ctx.context.newSession;
      if (signedIn) {
        await audit.recordAuditEvent({
          action: "user.signed_in",
          actor: { type: "user", id: signedIn.user.id },
          target: { type: "session", id: signedIn.session.id },
        });
      }
      return;
    }
    if (failed) return;

    switch (ctx.path) {
      case "/request-password-reset":
        await audit.recordAuditEvent({
          action: "user.password_reset_requested",
          metadata: { email: bodyField(ctx, "email") },
        });
        return;
      case "/admin/ban-user":
        if (targetUser) {
          await revocations.revokeUser(targetUser);
          await leaveAllTenants(deps, targetUser, "user.banned");
        }
        await audit.recordAuditEvent({
          action: "user.banned",
          actor,
          target: targetUser ? { type: "user", id: targetUser } : undefined,
          metadata: { reason: bodyField(ctx, "banReason") },
        });
        return;
      case "/admin/unban-user":
        if (targetUser) await restoreMemberRoles(deps, targetUser);
        await audit.recordAuditEvent({
          action: "user.unbanned",
          actor,
          target: targetUser ? { type: "user", id: targetUser } : undefined,
        });
        return;
      case "/organization/leave": {
        const tenantId = bodyField(ctx, "organizationId");
        const leaver = await requester();
        if (!leaver || !tenantId) return;
        // better-auth's leave runs no member hook: the way out is taken here, in the same unit.
        await leaveTenant(deps, leaver, tenantId, "member.left");
        await audit.recordAuditEvent({
          action: "member.left",
          tenantId,
          actor: { type: "user", id: leaver },
          target: { type: "user", id: leaver },
        });
        return;
      }
      case "/organization/create":
      case "/organization/set-active":
      case "/update-user":
      case "/update-session": {
        // What the session says changed: every instance reads it afresh on the next request.
        const user = await requester();
        if (user) await revocations.sessionsChanged(user);
        return;
      }
      case "/admin/impersonate-user":
        if (actorId) await revocations.sessionsChanged(actorId);
        await audit.recordAuditEvent({
          action: "user.impersonation_started",
          actor,
          target: targetUser ? { type: "user", id: targetUser } : undefined,
        });
        return;
      case "/admin/stop-impersonating": {
        const session = ctx.context.session?.session as { impersonatedBy?: string | null } | undefined;
        if (actorId) await revocations.revokeUser(actorId);
        if (session?.impersonatedBy) await revocations.sessionsChanged(session.impersonatedBy);
        await audit.recordAuditEvent({
          action: "user.impersonation_stopped",
          actor: session?.impersonatedBy ? { type: "user", id: session.impersonatedBy } : actor,
          target: actorId ? { type: "user", id: actorId } : undefined,
        });
        return;
      }
      case "/admin/revoke-user-session":
      case "/admin/revoke-user-sessions":
        if (targetUser) await revocations.revokeUser(targetUser);
        await audit.recordAuditEvent({
          action: "session.revoked",
          actor,
          target: targetUser ? { type: "user", id: targetUser } : undefined,
        });
        return;
      case "/change-password":
        if (actorId && (ctx.body as { revokeOtherSessions?: boolean } | undefined)?.revokeOtherSessions)
          await revocations.revokeUser(actorId);
        await audit.recordAuditEvent({
          action: "user.password_changed",
          actor,
          target: actorId ? { type: "user", id: actorId } : undefined,
        });
        return;
      case "/revoke-session":
      case "/revoke-sessions":
      case "/revoke-other-sessions":
        if (actorId) await revocations.revokeUser(actorId);
        await audit.recordAuditEvent({ action: "session.revoked", actor, metadata: { scope: ctx.path.slice(1) } });
        return;
      default:
        return;
    }
  });
}
