/**
 * Context variables every route can read, typed once for `c.get(...)` everywhere.
 */
import type { RequestIdVariables } from "hono/request-id";

export interface SessionUser {
  id: string;
  email: string;
  name: string;
  emailVerified: boolean;
  /** Platform role from the admin plugin ("admin" for platform administrators). */
  role?: string | null;
}

export interface SessionInfo {
  id: string;
  expiresAt: Date;
  activeOrganizationId?: string | null;
  impersonatedBy?: string | null;
}

export interface TenantInfo {
  id: string;
}

declare module "hono" {
  interface ContextVariableMap extends RequestIdVariables {
    user: SessionUser | null;
    session: SessionInfo | null;
    tenant: TenantInfo | null;
  }
}
