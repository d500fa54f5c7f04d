/**
 * Recording audit events. The write joins the caller's unit of work, so the event commits with the
 * change it records or not at all; a failed audit insert fails the change (fail closed).
 */
import type { Router } from "../../db/router.js";
import { currentContext, type Actor } from "../../db/unit-of-work.js";
import { auditLogs } from "./schema.js";

export interface AuditEventInput {
  /** `entity.verb`, e.g. `role.assigned`, `user.signed_up`. */
  action: string;
  target?: { type: string; id: string };
  /** Defaults to the unit of work's tenant. */
  tenantId?: string | null;
  /** Defaults to the unit of work's actor, else the system. */
  actor?: Actor;
  metadata?: Record<string, unknown>;
  changes?: { before?: unknown; after?: unknown };
}

export function createAuditService(router: Router) {
  /**
   * Records one audit event in the ambient transaction.
   *
   * @example
   * await sdk.transaction(async () => {
   *   await createWidget(...);
   *   await sdk.audit.recordAuditEvent({ action: "widget.created", target: { type: "widget", id } });
   * });
   */
  async function recordAuditEvent(event: AuditEventInput): Promise<void> {
    const context = currentContext();
    const actor = event.actor ?? context.actor ?? { type: "system" };
    const tenantId = event.tenantId !== undefined ? event.tenantId : context.tenantId === "*" ? null : context.tenantId;
    await router
      .db("audit")
      .insert(auditLogs)
      .values({
        tenantId: tenantId ?? null,
        actorType: actor.type,
        actorId: actor.id ?? null,
        action: event.action,
        targetType: event.target?.type ?? null,
        targetId: event.target?.id ?? null,
        ip: context.ip ?? null,
        userAgent: context.userAgent ?? null,
        requestId: context.requestId ?? null,
        metadata: event.metadata ?? null,
        changes: event.changes ?? null,
      });
  }

  return { recordAuditEvent };
}
