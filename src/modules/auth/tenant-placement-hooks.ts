/**
 * Tenant creation and placement: better-auth's organization create, with the tenant placed before
 * its first row. Its endpoint runs `beforeCreateOrganization` (we choose the tenant's id and where it
 * goes — refused there, before anything is written), inserts the organization, then
 * `beforeAddMember` for its creator (the placement is recorded now, before the member and the
 * owner's role are written, so they and every later row of the tenant land where it lives).
 *
 * The placement asked for (POST /api/v1/tenants) reaches the hooks through the call's async context:
 * better-auth's endpoint takes no field for it. Without one — better-auth's own `/organization/create`,
 * `sdk.auth.api.createOrganization` — the tenant goes to the topology's default database.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import type { PlacementRequest, TenantPlacement, TenantPlacements } from "../../db/tenant-placement.js";
import { guarded } from "./hooks.js";

const requests = new AsyncLocalStorage<PlacementRequest>();

/** Runs `fn` (a tenant creation) with the placement it asks for. */
export function withRequestedPlacement<T>(request: PlacementRequest, fn: () => Promise<T>): Promise<T> {
  return requests.run(request, fn);
}

/** A creation whose organization insert failed leaves its entry behind: dropped after this long. */
const PENDING_TTL_MS = 60_000;

/** better-auth organization hooks that place each new tenant. */
export function createPlacementHooks(placements: TenantPlacements) {
  // Tenants chosen a placement whose creator is not a member yet, by the id chosen for them.
  const pending = new Map<string, { placement: TenantPlacement; at: number }>();
  return {
    beforeCreateOrganization: () =>
      guarded(async () => {
        const placement = await placements.choose(requests.getStore());
        const now = Date.now();
        for (const [id, entry] of pending) if (now - entry.at > PENDING_TTL_MS) pending.delete(id);
        const id = randomUUID();
        pending.set(id, { placement, at: now });
        return { data: { id } };
      }),
    beforeAddMember: ({ organization }: { organization: { id: string } }) =>
      guarded(async () => {
        const entry = pending.get(organization.id);
        if (!entry) return;
        pending.delete(organization.id);
        await placements.place(organization.id, entry.placement);
      }),
  };
}
