/**
 * `/api/v1/audit`: `GET /events` (filters, keyset cursor, newest first) and `GET /events/export`
 * (NDJSON or CSV, streamed). Reading a tenant's trail needs `audit:read` in that tenant; reading the
 * platform (`scope=platform`: every tenant, or one named by `tenantId`, or platform events with
 * `tenantId=platform`) needs `audit:read` granted globally. Row-level security confines every read
 * to the scope chosen here, so a tenant never sees another tenant's events.
 *
 * A database that could not answer is named, not fatal (src/modules/audit/query.ts): the page's
 * `missingDatabases` and the `Missing-Databases` header (both reads) list it; the read is a 503 only
 * when the scope's own database is the one down.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { createRoutes, errorResponses, tenantOf, type PermissionGuard } from "../../http/kit/index.js";
import { AuditErrors } from "./errors.js";
import type { AuditExport, AuditFilters, AuditPage, ExportFormat } from "./query.js";

/** What the routes need from the permissions module. */
export type AuditPermissions = PermissionGuard;

/** What the routes need from the audit module: its two reads. */
export interface AuditReader {
  queryEvents(filters?: AuditFilters, cursor?: string | null): Promise<AuditPage>;
  openExport(filters?: AuditFilters, format?: ExportFormat): Promise<AuditExport>;
}

/** The header naming the databases a partial answer left out (comma-separated). */
export const MISSING_DATABASES_HEADER = "Missing-Databases";

const MissingDatabasesHeader = {
  [MISSING_DATABASES_HEADER]: {
    schema: { type: "string" as const },
    description:
      "Present when a database could not answer (down or not answering): the names of the databases whose events are missing from this answer, comma-separated",
  },
};

export interface AuditRoutesOptions {
  audit: AuditReader;
  permissions: AuditPermissions;
}

const ActorTypeSchema = z.enum(["user", "api_key", "system", "service", "webhook"]);

const FilterQuery = z.object({
  scope: z.enum(["tenant", "platform"]).default("tenant").openapi({
    description: "`tenant`: the request's tenant (audit:read there). `platform`: needs audit:read globally",
  }),
  tenantId: z
    .union([z.uuid(), z.literal("platform")])
    .optional()
    .openapi({ description: "With scope=platform: one tenant's events, or `platform` for platform events only" }),
  actorType: ActorTypeSchema.optional(),
  actorId: z.string().min(1).max(200).optional(),
  action: z
    .string()
    .min(1)
    .max(120)
    .optional()
    .openapi({ description: "Action prefix, e.g. `role.`", example: "role." }),
  targetType: z.string().min(1).max(100).optional(),
  targetId: z.string().min(1).max(200).optional(),
  from: z.iso.datetime({ offset: true }).optional().openapi({ description: "Inclusive lower bound of occurredAt" }),
  to: z.iso.datetime({ offset: true }).optional().openapi({ description: "Exclusive upper bound of occurredAt" }),
});

const PageQuery = FilterQuery.extend({
  cursor: z.string().min(1).max(200).optional().openapi({ description: "nextCursor of the previous page" }),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});

const ExportQuery = FilterQuery.extend({
  format: z.enum(["ndjson", "csv"]).default("ndjson"),
});

const AuditEventSchema = z
  .object({
    id: z.string(),
    occurredAt: z.string(),
    tenantId: z.uuid().nullable(),
    actor: z.object({ type: ActorTypeSchema, id: z.string().nullable() }),
    action: z.string(),
    target: z.object({ type: z.string().nullable(), id: z.string().nullable() }).nullable(),
    ip: z.string().nullable(),
    userAgent: z.string().nullable(),
    requestId: z.string().nullable(),
    metadata: z.record(z.string(), z.unknown()).nullable(),
    changes: z.object({ before: z.unknown().optional(), after: z.unknown().optional() }).nullable(),
  })
  .openapi("AuditEvent");

type FilterInput = z.infer<typeof FilterQuery>;

/** The scope a request may read, after its permission was checked for that scope. */
function filtersOf(c: Context, query: FilterInput): AuditFilters {
  let tenantId: string | null;
  if (query.scope === "platform") {
    tenantId = query.tenantId === undefined ? "*" : query.tenantId === "platform" ? null : query.tenantId;
  } else {
    const tenant = tenantOf(c);
    if (tenant === null) throw AuditErrors.TENANT_REQUIRED();
    if (query.tenantId !== undefined) {
      throw AuditErrors.INVALID_AUDIT_EVENT(
        { field: "tenantId" },
        "tenantId needs scope=platform; scope=tenant reads the request's tenant",
      );
    }
    tenantId = tenant;
  }
  return {
    tenantId,
    actorType: query.actorType,
    actorId: query.actorId,
    action: query.action,
    targetType: query.targetType,
    targetId: query.targetId,
    from: query.from ? new Date(query.from) : undefined,
    to: query.to ? new Date(query.to) : undefined,
  };
}

export function createAuditRoutes({ audit, permissions }: AuditRoutesOptions) {
  const app = createRoutes();
  const inTenant = permissions.requirePermission("audit:read");
  const global = permissions.requirePermission("audit:read", { tenant: "global" });
  // The permission depends on the scope asked for: the tenant's audit:read, or a global one.
  const canRead: MiddlewareHandler = (c, next) =>
    c.req.query("scope") === "platform" ? global(c, next) : inTenant(c, next);
  const tags = ["Audit"];

  return app
    .openapi(
      createRoute({
        method: "get",
        path: "/events",
        tags,
        summary: "Audit events, newest first, filtered, with a keyset cursor",
        middleware: [canRead] as const,
        request: { query: PageQuery },
        responses: {
          200: {
            description: "One page of events",
            content: {
              "application/json": {
                schema: z.object({
                  events: z.array(AuditEventSchema),
                  nextCursor: z.string().nullable(),
                  missingDatabases: z.array(z.string()).optional().openapi({
                    description:
                      "Present when a database could not answer (down or not answering): its events are missing from this page; every other database's are here. A retry once it is back reads them",
                  }),
                }),
              },
            },
            headers: MissingDatabasesHeader,
          },
          ...errorResponses(400, 401, 403),
        },
      }),
      async (c) => {
        const query = c.req.valid("query");
        const page = await audit.queryEvents({ ...filtersOf(c, query), limit: query.limit }, query.cursor);
        if (page.missingDatabases) c.header(MISSING_DATABASES_HEADER, page.missingDatabases.join(","));
        return c.json(page, 200);
      },
    )

    .openapi(
      createRoute({
        method: "get",
        path: "/events/export",
        tags,
        summary: "Every matching audit event, streamed as NDJSON or CSV (newest first)",
        middleware: [canRead] as const,
        request: { query: ExportQuery },
        responses: {
          200: {
            description: "The events, one per line",
            content: {
              "application/x-ndjson": {
                schema: z.string().openapi({ description: "One AuditEvent JSON object per line" }),
              },
              "text/csv": { schema: z.string().openapi({ description: "A header line, then one event per line" }) },
            },
            headers: MissingDatabasesHeader,
          },
          ...errorResponses(400, 401, 403),
        },
      }),
      async (c) => {
        const query = c.req.valid("query");
        const { stream, missingDatabases } = await audit.openExport(filtersOf(c, query), query.format);
        const csv = query.format === "csv";
        return c.body(stream, 200, {
          "content-type": csv ? "text/csv; charset=utf-8" : "application/x-ndjson; charset=utf-8",
          "content-disposition": `attachment; filename="audit-events.${csv ? "csv" : "ndjson"}"`,
          "cache-control": "no-store",
          ...(missingDatabases.length > 0 && { [MISSING_DATABASES_HEADER]: missingDatabases.join(",") }),
        });
      },
    );
}
