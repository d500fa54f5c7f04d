/**
 * The factory every module's routes use: an OpenAPIHono whose validation failures are 400
 * problem+json naming the fields, so each route is defined once with its zod schemas and the
 * OpenAPI document comes from that definition.
 */
import { OpenAPIHono, z } from "@hono/zod-openapi";
import { validationHook } from "./problem.js";

export function createRoutes(): OpenAPIHono {
  return new OpenAPIHono({ defaultHook: (result, c) => validationHook(result, c) });
}

/** The problem+json response schema, for routes' error responses in the OpenAPI document. */
export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional(),
    code: z.string(),
    requestId: z.string().optional(),
    instance: z.string().optional(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .openapi("Problem");

/** Standard error responses for a route, e.g. `...errorResponses(400, 401, 403)`. */
export function errorResponses(...statuses: number[]) {
  const descriptions: Record<number, string> = {
    400: "Invalid request: the failing fields are listed",
    401: "No valid session or bearer token",
    403: "Missing permission or another tenant's resource",
    404: "Not found",
    409: "Conflicts with existing data",
    413: "Request body too large",
    422: "Understood but not possible as asked (e.g. a name the configuration does not know)",
    503: "Not ready",
  };
  return Object.fromEntries(
    statuses.map((s) => [
      s,
      { description: descriptions[s] ?? "Error", content: { "application/problem+json": { schema: ProblemSchema } } },
    ]),
  );
}
