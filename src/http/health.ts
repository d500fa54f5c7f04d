/**
 * `/health` (the process is alive) and `/ready`: each database's state (reachable as the runtime role,
 * migrations current). The instance is ready while the control plane (main) is: a tenant or schema
 * database that is down costs only what lives there, so a load balancer must not take every instance
 * out for it. `?strict=1` (or `strict: true`) asks for every database.
 *
 * Each ready database also reports its outbox (src/db/outbox-relay.ts): effects waiting for the
 * relay, and how long the oldest has waited — the relay's lag.
 *
 * A database the router knows is down (src/db/health.ts) is reported at once, with the moment it
 * went down, rather than waited for; the others are asked, each within CHECK_TIMEOUT_MS.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Router } from "../db/router.js";
import type { Logger } from "../logger.js";
import { appliedMigrationCount, shippedMigrationCount } from "../db/migration-count.js";
import { createRoutes, errorResponses } from "./routes.js";
import { AppError } from "../errors.js";
import { Deadline } from "../db/deadline.js";

const DatabaseStatus = z.object({
  name: z.string(),
  state: z.enum(["ready", "unreachable", "not_migrated"]),
  reachable: z.boolean(),
  migrations: z.object({ applied: z.number().int(), shipped: z.number().int() }).optional(),
  error: z.string().optional(),
  outbox: z.object({ pending: z.number().int(), oldestSeconds: z.number() }).optional().openapi({
    description:
      "Cross-database effects (audit events for a split audit database, copies' cleanup) waiting in this database's outbox for the relay: its lag",
  }),
  downSince: z.string().optional().openapi({
    description:
      "When the router found it down (ISO 8601): work on it fails at once with 503 until a probe finds it back",
  }),
});

/** A database that does not answer within this is reported unreachable (a frozen server answers nothing). */
const CHECK_TIMEOUT_MS = 2_000;

export async function databaseStatuses(router: Router, logger?: Logger) {
  const shipped = shippedMigrationCount();
  return Promise.all(
    Object.keys(router.topology.databases).map(async (name) => {
      const health = router.health(name);
      if (health.state === "down") {
        return {
          name,
          state: "unreachable" as const,
          reachable: false,
          error: "unreachable",
          downSince: new Date(health.since).toISOString(),
        };
      }
      try {
        const deadline = Deadline.in(CHECK_TIMEOUT_MS, "readiness check");
        const sql = router.pool(name).sql;
        const applied = await deadline.race(appliedMigrationCount(sql));
        const state = applied === shipped ? ("ready" as const) : ("not_migrated" as const);
        if (state !== "ready") return { name, state, reachable: true, migrations: { applied, shipped } };
        const [lag] = await deadline.race(sql<{ pending: number; oldest: number }[]>`
          select count(*)::int as pending, coalesce(extract(epoch from now() - min(created_at)), 0)::float8 as oldest
          from platform.outbox`);
        const outbox = { pending: lag!.pending, oldestSeconds: Math.round(lag!.oldest * 10) / 10 };
        return { name, state, reachable: true, migrations: { applied, shipped }, outbox };
      } catch (error) {
        // The driver's message can name hosts and users: it goes to the log, not to the caller.
        logger?.warn("readiness check failed", { database: name, error: (error as Error).message });
        return { name, state: "unreachable" as const, reachable: false, error: "unreachable" };
      }
    }),
  );
}

export interface HealthOptions {
  /** Ready only when every database is (default: when the control plane is). */
  strict?: boolean;
}

export function createHealthRoutes(router: Router, logger?: Logger, options: HealthOptions = {}) {
  const app = createRoutes();
  app.openapi(
    createRoute({
      method: "get",
      path: "/health",
      tags: ["Operations"],
      summary: "Liveness: the process answers",
      responses: {
        200: {
          description: "Alive",
          content: { "application/json": { schema: z.object({ status: z.literal("ok") }) } },
        },
      },
    }),
    (c) => c.json({ status: "ok" as const }, 200),
  );
  app.openapi(
    createRoute({
      method: "get",
      path: "/ready",
      tags: ["Operations"],
      summary:
        "Readiness: the control plane (or, strict, every database) reachable and migrated; each database's state",
      request: { query: z.object({ strict: z.enum(["0", "1", "true", "false"]).optional() }) },
      responses: {
        200: {
          description: "Ready (status `degraded` when a database other than the control plane is not)",
          content: {
            "application/json": {
              schema: z.object({ status: z.enum(["ready", "degraded"]), databases: z.array(DatabaseStatus) }),
            },
          },
        },
        ...errorResponses(400, 503),
      },
    }),
    async (c) => {
      const query = c.req.valid("query");
      const strict =
        query.strict === undefined ? (options.strict ?? false) : query.strict === "1" || query.strict === "true";
      const databases = await databaseStatuses(router, logger);
      const required = strict ? databases : databases.filter((d) => d.name === "main");
      if (required.some((d) => d.state !== "ready")) {
        throw new AppError(
          "NOT_READY",
          503,
          strict
            ? "A database is unreachable or not migrated"
            : "The control plane database is unreachable or not migrated",
          {
            databases,
          },
        );
      }
      const status = databases.every((d) => d.state === "ready") ? ("ready" as const) : ("degraded" as const);
      return c.json({ status, databases }, 200);
    },
  );
  return app;
}
