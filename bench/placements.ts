/**
 * A router holds tenant placements in memory once its listener for moves is up; until then each
 * tenant-scoped unit asks for its tenant's placement too. Rows that count queries warm it first, so
 * they count the steady state (a start-up cost is not a per-request one).
 */
import type { Router } from "../src/db/router.js";

export async function warmPlacements(router: Router, tenantId: string): Promise<void> {
  await router.placementOf(tenantId); // starts the listener
  await new Promise((resolve) => setTimeout(resolve, 300));
  await router.placementOf(tenantId); // loads the placements once the listener is live
}
