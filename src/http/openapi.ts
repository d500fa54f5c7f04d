/**
 * One OpenAPI 3.1 document for the whole API: our routes (from their zod definitions) merged with
 * better-auth's (from its openAPI plugin), whose paths are mounted under `/api/auth`.
 */
export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, unknown>>;
  components?: { schemas?: Record<string, unknown>; securitySchemes?: Record<string, unknown> };
  tags?: { name: string; description?: string }[];
  servers?: { url: string }[];
  [key: string]: unknown;
}

/**
 * Merges `mounted` (served under `prefix`) into `base`. A component schema whose name `base` already
 * uses is renamed `Auth<Name>`, and the references to it rewritten.
 */
export function mergeOpenApi(base: OpenApiDocument, mounted: OpenApiDocument, prefix: string): OpenApiDocument {
  let text = JSON.stringify({ paths: mounted.paths, schemas: mounted.components?.schemas ?? {} });
  for (const name of Object.keys(mounted.components?.schemas ?? {})) {
    if (base.components?.schemas?.[name]) {
      text = text.replaceAll(`"#/components/schemas/${name}"`, `"#/components/schemas/Auth${name}"`).replace(`"${name}":`, `"Auth${name}":`);
    }
  }
  const renamed = JSON.parse(text) as { paths: OpenApiDocument["paths"]; schemas: Record<string, unknown> };
  const paths: OpenApiDocument["paths"] = { ...base.paths };
  for (const [path, item] of Object.entries(renamed.paths)) paths[`${prefix}${path}`] = item;
  return {
    ...base,
    paths,
    components: {
      ...base.components,
      schemas: { ...base.components?.schemas, ...renamed.schemas },
      securitySchemes: { ...mounted.components?.securitySchemes, ...base.components?.securitySchemes },
    },
    tags: [...(base.tags ?? []), ...(mounted.tags ?? []).filter((t) => !base.tags?.some((b) => b.name === t.name))],
  };
}

const WRITES = ["post", "put", "patch", "delete"];

/**
 * Every write of the /api/v1 routes can meet a tenant that is being moved to another database: it is
 * then refused with 503 TENANT_MOVING and Retry-After (src/db/router.ts). Documented once here for
 * all of them rather than in each route's definition; a route that already documents a 503 keeps it.
 */
export function withTenantMovingResponses(document: OpenApiDocument, prefix = "/api/v1/"): OpenApiDocument {
  const paths: OpenApiDocument["paths"] = {};
  for (const [path, item] of Object.entries(document.paths)) {
    if (!path.startsWith(prefix)) {
      paths[path] = item;
      continue;
    }
    const operations: Record<string, unknown> = { ...item };
    for (const method of WRITES) {
      const operation = operations[method] as { responses?: Record<string, unknown> } | undefined;
      if (!operation || operation.responses?.["503"]) continue;
      operations[method] = {
        ...operation,
        responses: {
          ...operation.responses,
          503: {
            description: "The tenant the request acts in is being moved to another database (code TENANT_MOVING): retry after Retry-After seconds",
            headers: { "Retry-After": { schema: { type: "integer" }, description: "Seconds to wait before retrying" } },
            content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
          },
        },
      };
    }
    paths[path] = operations;
  }
  return { ...document, paths };
}
