/**
 * `/health` (the process is alive) and `/ready` (every database reachable as the runtime role, and
 * its migrations current).
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Router } from "../db/router.js";
import type { Logger } from "../logger.js";
import { appliedMigrationCount, shippedMigrationCount } from "../db/migrate.js";
import { createRoutes, errorResponses } from "./routes.js";
import { AppError } from "../errors.js";

const DatabaseStatus = z.object({
  name: z.string(),
  reachable: z.boolean(),
  migrations: z.object({ applied: z.number().int(), shipped: z.number().int() }).optional(),
  error: z.string().optional(),
});

export async function databaseStatuses(router: Router, logger?: Logger) {
  const shipped = shippedMigrationCount();
  return Promise.all(
    Object.keys(router.topology.databases).map(async (name) => {
      try {
        const applied = await appliedMigrationCount(router.pool(name).sql);
        return { name, reachable: true, migrations: { applied, shipped } };
      } catch (error) {
        // The driver's message can name hosts and users: it goes to the log, not to the caller.
        logger?.error("readiness check failed", { database: name, error: (error as Error).message });
        return { name, reachable: false, error: "unreachable" };
      }
    }),
  );
}

export function createHealthRoutes(router: Router, logger?: Logger) {
  const app = createRoutes();
  app.openapi(
    createRoute({
      method: "get",
      path: "/health",
      tags: ["Operations"],
      summary: "Liveness: the process answers",
      responses: {
        200: { description: "Alive", content: { "application/json": { schema: z.object({ status: z.literal("ok") }) } } },
      },
    }),
    (c) => c.json({ status: "ok" as const }, 200),
  );
  app.openapi(
    createRoute({
      method: "get",
      path: "/ready",
      tags: ["Operations"],
      summary: "Readiness: every database reachable and migrated",
      responses: {
        200: {
          description: "Ready",
          content: {
            "application/json": { schema: z.object({ status: z.literal("ready"), databases: z.array(DatabaseStatus) }) },
          },
        },
        ...errorResponses(503),
      },
    }),
    async (c) => {
      const databases = await databaseStatuses(router, logger);
      const ready = databases.every((d) => d.reachable && d.migrations && d.migrations.applied === d.migrations.shipped);
      if (!ready) throw new AppError("NOT_READY", 503, "A database is unreachable or not migrated", { databases });
      return c.json({ status: "ready" as const, databases }, 200);
    },
  );
  return app;
}
