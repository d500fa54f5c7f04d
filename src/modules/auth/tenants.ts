/**
 * `createTenant`: a tenant (organization) created by a signed-in user, who becomes its owner, and
 * placed where the caller asks (a region or a database of the topology) or on the topology's default
 * database. The work is better-auth's organization create; the placement reaches its hooks
 * (tenant-placement-hooks.ts) through the call's async context. Whether the caller may choose a
 * placement is the route's to decide.
 */
import { randomUUID } from "node:crypto";
import { isAPIError } from "better-auth/api";
import { AppError } from "../../errors.js";
import type { ModuleContext } from "../../db/module.js";
import type { PlacementRequest, TenantPlacement, TenantPlacements } from "../../db/tenant-placement.js";
import type { BetterAuth } from "./better-auth.js";
import { AuthErrors } from "./errors.js";
import { withRequestedPlacement } from "./tenant-placement-hooks.js";

export interface CreateTenantInput {
  name: string;
  /** URL-safe and unique; made from the name when omitted. */
  slug?: string;
  placement?: PlacementRequest;
}

export interface CreatedTenant {
  id: string;
  name: string;
  slug: string;
  placement: TenantPlacement;
}

/** A slug from a name: lower-case letters, digits and dashes, with a random suffix for uniqueness. */
function slugOf(name: string): string {
  const base = name
    .normalize("NFKD")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40);
  return `${base || "tenant"}-${randomUUID().slice(0, 8)}`;
}

export async function createTenant(
  deps: { auth: BetterAuth; placements: TenantPlacements; context: ModuleContext },
  input: CreateTenantInput,
  headers: Headers,
): Promise<CreatedTenant> {
  const slug = input.slug ?? slugOf(input.name);
  let org: { id: string; name: string; slug: string } | null;
  try {
    // Outside any tenant's scope: a request naming the caller's current tenant (X-Tenant-Id) opened
    // its unit there, and row-level security refused the new tenant's rows under it.
    org = await deps.context.withTenant(null, () =>
      withRequestedPlacement(input.placement ?? {}, () =>
        // The caller's active tenant stays as it is: /api/v1 names its tenant per request.
        deps.auth.api.createOrganization({
          body: { name: input.name, slug, keepCurrentActiveOrganization: true },
          headers,
        }),
      ),
    );
  } catch (error) {
    if (!isAPIError(error)) throw error;
    const code = (error.body as { code?: string } | undefined)?.code;
    if (code === "ORGANIZATION_ALREADY_EXISTS") throw AuthErrors.TENANT_SLUG_TAKEN({ slug });
    if (error.statusCode === 401) throw AuthErrors.SESSION_REQUIRED();
    if (error.statusCode >= 500) throw error;
    // better-auth's refusal (a limit, a bad field), answered with its status and code.
    throw new AppError(
      code ?? "TENANT_NOT_CREATED",
      error.statusCode,
      error.message || "The tenant could not be created",
    );
  }
  if (!org) throw AuthErrors.TENANT_NOT_CREATED();
  return { id: org.id, name: org.name, slug: org.slug, placement: await deps.placements.placementOf(org.id) };
}
