/**
 * The operations of the served `/openapi.json`, with their parameters and JSON body schemas resolved
 * (`$ref`s inlined), as the generator needs them.
 */

export interface JsonSchema {
  type?: string | string[];
  format?: string;
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number | boolean;
  exclusiveMaximum?: number | boolean;
  minItems?: number;
  maxItems?: number;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  nullable?: boolean;
  default?: unknown;
  example?: unknown;
  $ref?: string;
  [key: string]: unknown;
}

export interface Parameter {
  name: string;
  in: "query" | "path" | "header" | "cookie";
  required: boolean;
  schema: JsonSchema;
}

export interface Operation {
  method: string;
  /** The path template, e.g. `/api/v1/permissions/roles/{roleId}`. */
  path: string;
  /** `METHOD /path` */
  key: string;
  pathParams: Parameter[];
  query: Parameter[];
  /** The JSON request body, when the operation declares one. */
  body?: { schema: JsonSchema; required: boolean };
}

interface Document {
  paths: Record<
    string,
    Record<
      string,
      {
        parameters?: Parameter[];
        requestBody?: { required?: boolean; content?: Record<string, { schema?: JsonSchema }> };
      }
    >
  >;
  components?: { schemas?: Record<string, JsonSchema> };
}

const METHODS = ["get", "post", "put", "patch", "delete"];

export function operationsOf(document: Document): Operation[] {
  const components = document.components?.schemas ?? {};
  const resolve = (schema: JsonSchema | undefined, depth = 0): JsonSchema => {
    if (!schema || depth > 20) return {};
    if (schema.$ref) return resolve(components[schema.$ref.split("/").pop()!], depth + 1);
    const out: JsonSchema = { ...schema };
    if (schema.properties)
      out.properties = Object.fromEntries(
        Object.entries(schema.properties).map(([k, v]) => [k, resolve(v, depth + 1)]),
      );
    if (schema.items) out.items = resolve(schema.items, depth + 1);
    for (const key of ["anyOf", "oneOf", "allOf"] as const)
      if (schema[key]) out[key] = schema[key]!.map((s) => resolve(s, depth + 1));
    if (typeof schema.additionalProperties === "object")
      out.additionalProperties = resolve(schema.additionalProperties, depth + 1);
    return out;
  };

  const operations: Operation[] = [];
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!METHODS.includes(method)) continue;
      const parameters = (op.parameters ?? []).map((p) => ({
        ...p,
        required: p.required ?? p.in === "path",
        schema: resolve(p.schema),
      }));
      // Path parameters the document forgot to declare are still in the template.
      const declared = new Set(parameters.filter((p) => p.in === "path").map((p) => p.name));
      for (const [, name] of path.matchAll(/\{([^}]+)\}/g)) {
        if (!declared.has(name!))
          parameters.push({ name: name!, in: "path", required: true, schema: { type: "string" } });
      }
      const json = op.requestBody?.content?.["application/json"];
      operations.push({
        method: method.toUpperCase(),
        path,
        key: `${method.toUpperCase()} ${path}`,
        pathParams: parameters.filter((p) => p.in === "path"),
        query: parameters.filter((p) => p.in === "query"),
        body: json ? { schema: resolve(json.schema), required: op.requestBody?.required ?? false } : undefined,
      });
    }
  }
  return operations;
}

/** The JSON types a schema admits (`undefined`: anything). */
export function typesOf(schema: JsonSchema): Set<string> | undefined {
  const types = new Set<string>();
  const add = (s: JsonSchema): boolean => {
    if (s.anyOf || s.oneOf) return (s.anyOf ?? s.oneOf)!.every(add);
    if (s.enum) {
      for (const v of s.enum)
        types.add(v === null ? "null" : Array.isArray(v) ? "array" : typeof v === "number" ? "number" : typeof v);
      return true;
    }
    if (s.const !== undefined) {
      types.add(s.const === null ? "null" : typeof s.const);
      return true;
    }
    if (s.type === undefined) return false;
    for (const t of Array.isArray(s.type) ? s.type : [s.type]) types.add(t === "integer" ? "number" : t);
    if (s.nullable) types.add("null");
    return true;
  };
  return add(schema) ? types : undefined;
}
