/**
 * Membership is the gate: a request acts in a tenant only while its user is a member of it now —
 * whatever the session's active organization says, whatever X-Tenant-Id asks for. Answers are kept
 * in memory per user (one indexed query fills them) and dropped on every instance when the user
 * joins or leaves a tenant (the session feed's `membership` events), so the hot path asks nothing.
 */
import { eq } from "drizzle-orm";
import type { ModuleContext } from "../../db/module.js";
import type { Revocations } from "./revocations.js";
import { members } from "./schema.js";

export function createMemberships(
  context: ModuleContext,
  feed: Revocations,
  options: { ttlMs?: number; maxEntries?: number } = {},
) {
  const ttlMs = options.ttlMs ?? 60_000;
  const maxEntries = options.maxEntries ?? 50_000;
  const known = new Map<string, { tenants: ReadonlySet<string>; until: number }>();
  // Moves on every event: an answer read before an event and stored after it would be stale.
  let generation = 0;

  feed.subscribe((event) => {
    if (event.kind === "changed" && event.userId !== "*") return;
    generation++;
    if (event.userId === "*") known.clear();
    else known.delete(event.userId);
  });

  return {
    /** The cached answer, or undefined when it must be asked. */
    cached(userId: string, tenantId: string): boolean | undefined {
      const entry = known.get(userId);
      if (!entry || entry.until <= Date.now()) return undefined;
      return entry.tenants.has(tenantId);
    },
    /** Whether the user is a member of the tenant now (inside a unit of work: its own view). */
    async isMember(userId: string, tenantId: string): Promise<boolean> {
      const seen = generation;
      const rows = await context
        .db()
        .select({ tenant: members.organizationId })
        .from(members)
        .where(eq(members.userId, userId));
      const tenants = new Set(rows.map((r) => r.tenant));
      // Kept only while other instances' events arrive, and never from inside a unit of work that
      // may be changing them (its view is not yet everyone's).
      if (feed.live && seen === generation && !context.inUnitOfWork()) {
        if (known.size >= maxEntries) known.delete(known.keys().next().value!);
        known.set(userId, { tenants, until: Date.now() + ttlMs });
      }
      return tenants.has(tenantId);
    },
  };
}

export type Memberships = ReturnType<typeof createMemberships>;
