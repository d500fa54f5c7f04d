/**
 * better-auth coerces some body fields it is given with the wrong type (`"userId": {}` becomes the
 * string "[object Object]", and the organization is created anyway). Its own OpenAPI document states
 * each field's type: a field present with another type is refused here, with a 400 naming it, before
 * better-auth runs.
 */
import type { MiddlewareHandler } from "hono";
import { CommonErrors } from "../errors.js";
import type { OpenApiDocument } from "./openapi.js";

type FieldTypes = Map<string, ReadonlySet<string>>;

interface SchemaLike {
  type?: string | string[];
  nullable?: boolean;
  properties?: Record<string, SchemaLike>;
}

function jsonType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

function accepts(types: ReadonlySet<string>, value: unknown): boolean {
  const type = jsonType(value);
  if (types.has(type)) return true;
  if (type === "number") return types.has("number") || (types.has("integer") && Number.isInteger(value));
  return false;
}

/** Field types of every `/api/auth` POST body, from the document. */
function bodyTypes(document: OpenApiDocument, prefix: string): Map<string, FieldTypes> {
  const byPath = new Map<string, FieldTypes>();
  for (const [path, item] of Object.entries(document.paths ?? {})) {
    if (!path.startsWith(prefix)) continue;
    const operation = (item as Record<string, { requestBody?: { content?: Record<string, { schema?: SchemaLike }> } }>)
      .post;
    const properties = operation?.requestBody?.content?.["application/json"]?.schema?.properties;
    if (!properties) continue;
    const fields: FieldTypes = new Map();
    for (const [name, schema] of Object.entries(properties)) {
      if (schema.type === undefined) continue;
      const types = new Set(Array.isArray(schema.type) ? schema.type : [schema.type]);
      if (schema.nullable) types.add("null");
      fields.set(name, types);
    }
    byPath.set(path, fields);
  }
  return byPath;
}

export function authBodyTypes(document: () => Promise<OpenApiDocument>, prefix = "/api/auth"): MiddlewareHandler {
  let types: Promise<Map<string, FieldTypes>> | undefined;
  return async (c, next) => {
    types ??= document().then((d) => bodyTypes(d, prefix));
    const fields = (await types).get(c.req.path);
    if (!fields || !(c.req.header("content-type") ?? "").includes("json")) return next();
    const body = (await c.req.json().catch(() => undefined)) as Record<string, unknown> | undefined;
    if (!body || typeof body !== "object") return next();
    const errors = Object.entries(body)
      .filter(([name, value]) => fields.has(name) && !accepts(fields.get(name)!, value))
      .map(([name]) => ({ path: name, message: `must be ${[...fields.get(name)!].join(" or ")}` }));
    if (errors.length > 0) throw CommonErrors.VALIDATION_FAILED({ errors });
    return next();
  };
}
