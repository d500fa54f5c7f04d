import { validate, compileErrors } from "@readme/openapi-parser";
import { createRoute, z } from "@hono/zod-openapi";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import { json, signedInUser, tenantOf, useTestSdk } from "../test/support.js";
import { createApp } from "./app.js";
import { freePort } from "./db/embedded.js";
import { shippedMigrationCount } from "./db/migration-count.js";
import { createRoutes } from "./http/routes.js";
import { createSdk } from "./index.js";
import { createJsonLogger } from "./logger.js";
import { createIsolatedDatabase, type IsolatedDatabase } from "./testing/database.js";

const logLines: Record<string, unknown>[] = [];
const logger = createJsonLogger("debug", (line) => logLines.push(JSON.parse(line) as Record<string, unknown>));
const { app, sdk, owner } = useTestSdk({ logger }, { logRequests: true });

// Test-only routes, registered before the first request (Hono freezes its router then). They live
// outside /api so no unit of work is opened for them.
const probe = createRoutes();
probe.openapi(
  createRoute({
    method: "post",
    path: "/echo",
    request: {
      body: {
        required: true,
        content: {
          "application/json": { schema: z.object({ name: z.string().min(1), count: z.number().int().min(0) }) },
        },
      },
    },
    responses: {
      200: {
        description: "Echo",
        content: { "application/json": { schema: z.object({ name: z.string(), count: z.number() }) } },
      },
    },
  }),
  (c) => c.json(c.req.valid("json"), 200),
);
probe.get("/boom", () => {
  throw new Error("connection to db-internal.example failed with password hunter2");
});
app.route("/test-only", probe);

const problemOf = async (res: Response) => {
  expect(res.headers.get("content-type")).toContain("application/problem+json");
  return (await res.json()) as Record<string, unknown>;
};

describe("request ids", () => {
  it("echoes a well-formed X-Request-Id and puts it in problem documents", async () => {
    const res = await app.request("/nowhere", { headers: { "x-request-id": "client-req-42" } });
    expect(res.headers.get("x-request-id")).toBe("client-req-42");
    expect(await problemOf(res)).toMatchObject({ requestId: "client-req-42" });
  });

  it("generates one when none is sent, or when the sent one is not safe to log", async () => {
    const generated = await app.request("/health");
    expect(generated.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const unsafe = await app.request("/health", { headers: { "x-request-id": "id with spaces; and <tags>" } });
    expect(unsafe.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("logs one JSON line per request carrying the request id", async () => {
    await app.request("/health", { headers: { "x-request-id": "logged-req-1" } });
    expect(logLines).toContainEqual(
      expect.objectContaining({
        level: "info",
        message: "request",
        requestId: "logged-req-1",
        method: "GET",
        path: "/health",
        status: 200,
      }),
    );
  });
});

describe("errors as problem+json", () => {
  it("answers an unknown route with a JSON 404", async () => {
    const res = await app.request("/no/such/route", { headers: { "x-request-id": "r404" } });
    expect(res.status).toBe(404);
    expect(await problemOf(res)).toMatchObject({
      type: "urn:sv-sdk:problem:not-found",
      title: "Not Found",
      status: 404,
      code: "NOT_FOUND",
      requestId: "r404",
      instance: "/no/such/route",
    });
  });

  it("refuses a body over the limit with 413", async () => {
    const big = JSON.stringify({ name: "x".repeat(1024 * 1024), count: 1 });
    // With a declared length (refused before reading) and without one (counted while streaming).
    const declared: Record<string, string>[] = [
      { "content-type": "application/json", "content-length": String(big.length) },
      { "content-type": "application/json" },
    ];
    for (const headers of declared) {
      const tooLarge = await app.request("/test-only/echo", { method: "POST", headers, body: big });
      expect(tooLarge.status).toBe(413);
      expect(await problemOf(tooLarge)).toMatchObject({ status: 413, code: "PAYLOAD_TOO_LARGE" });
    }
  });

  it("refuses a NUL in the query with 400 before a streamed export begins (after its first byte, only the connection could drop)", async () => {
    const auditor = await signedInUser(sdk);
    const tenant = await tenantOf(sdk, auditor);
    const headers = { ...auditor.headers, ...tenant.headers };
    const res = await app.request("/api/v1/audit/events/export?targetType=a%00b", { headers });
    expect(res.status).toBe(400);
    expect(await problemOf(res)).toMatchObject({
      status: 400,
      code: "VALIDATION_FAILED",
      detail: expect.stringContaining("NUL"),
    });
    // Without it, the same export streams fine.
    const fine = await app.request("/api/v1/audit/events/export?targetType=ab", { headers });
    expect(fine.status, await fine.clone().text()).toBe(200);
    await fine.text();
  });

  it("answers malformed JSON with 400, not 500", async () => {
    const res = await app.request("/test-only/echo", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"name": "unterminated',
    });
    expect(res.status).toBe(400);
    expect(await problemOf(res)).toMatchObject({ status: 400, code: "BAD_REQUEST" });
  });

  it("answers a validation failure with 400 naming every failing field", async () => {
    const res = await app.request("/test-only/echo", json("POST", { name: "", count: -1.5 }));
    expect(res.status).toBe(400);
    const problem = await problemOf(res);
    expect(problem).toMatchObject({ status: 400, code: "VALIDATION_FAILED" });
    const paths = (problem.errors as { path: string; message: string }[]).map((e) => e.path);
    expect(new Set(paths)).toEqual(new Set(["name", "count"]));
  });

  it("accepts a valid body", async () => {
    const res = await app.request("/test-only/echo", json("POST", { name: "ok", count: 2 }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ name: "ok", count: 2 });
  });

  it("turns an unknown error into a 500 without internals, and logs it with the request id", async () => {
    const res = await app.request("/test-only/boom", { headers: { "x-request-id": "r500" } });
    expect(res.status).toBe(500);
    const text = await res.clone().text();
    expect(text).not.toContain("hunter2");
    expect(text).not.toContain("db-internal");
    expect(text).not.toMatch(/\bat .*\.ts:\d+/);
    expect(await problemOf(res)).toMatchObject({ status: 500, code: "INTERNAL", requestId: "r500" });
    const logged = logLines.find((l) => l.message === "unhandled error" && l.requestId === "r500");
    expect(logged).toMatchObject({ level: "error", path: "/test-only/boom" });
    expect(JSON.stringify(logged)).toContain("hunter2");
  });
});

describe("health and readiness", () => {
  it("/health answers 200", async () => {
    const res = await app.request("/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  it("/ready answers 200 when the database is reachable and migrated", async () => {
    const res = await app.request("/ready");
    expect(res.status).toBe(200);
    const shipped = shippedMigrationCount();
    expect(await res.json()).toEqual({
      status: "ready",
      // Every database of the run's topology (SV_TOPOLOGY): main, and a split topology's second.
      databases: sdk.router.databases().map((name) => ({
        name,
        state: "ready",
        reachable: true,
        migrations: { applied: shipped, shipped },
        outbox: { pending: expect.any(Number), oldestSeconds: expect.any(Number) },
      })),
    });
  });

  it("/ready reports each database's outbox: effects waiting for the relay and the oldest one's age", async () => {
    // Its target is no database: the relay (split topologies) cannot apply it, so it waits until removed.
    const [effect] = await owner<{ id: string }[]>`
      insert into platform.outbox (target, effect, created_at)
      values ('elsewhere', '{"op":"insert","table":"audit.audit_logs","rows":[]}', now() - interval '42 seconds')
      returning id::text`;
    try {
      const body = (await (await app.request("/ready")).json()) as {
        databases: { outbox?: { pending: number; oldestSeconds: number } }[];
      };
      expect(body.databases[0]!.outbox!.pending).toBeGreaterThanOrEqual(1);
      expect(body.databases[0]!.outbox!.oldestSeconds).toBeGreaterThanOrEqual(42);
    } finally {
      await owner`delete from platform.outbox where id = ${effect!.id}`;
    }
  });

  describe("on a database whose migrations are not current", () => {
    let isolated: IsolatedDatabase;
    let sdk: ReturnType<typeof createSdk>;
    beforeAll(async () => {
      isolated = await createIsolatedDatabase(inject("svTestDatabase"));
      const owner = postgres(isolated.url, { max: 1, onnotice: () => {} });
      try {
        // The newest migration is recorded as not applied: the shipped code is ahead of the database.
        await owner`delete from drizzle.__drizzle_migrations where id = (select max(id) from drizzle.__drizzle_migrations)`;
      } finally {
        await owner.end({ timeout: 5 });
      }
      sdk = createSdk({ databaseUrl: isolated.url, databaseAppUrl: isolated.appUrl, environment: "test" });
    });
    afterAll(async () => {
      await sdk?.close();
      await isolated?.drop();
    });

    it("/ready answers 503 with the counts", async () => {
      const res = await createApp(sdk, { logRequests: false }).request("/ready");
      expect(res.status).toBe(503);
      const shipped = shippedMigrationCount();
      expect(await problemOf(res)).toMatchObject({
        status: 503,
        code: "NOT_READY",
        databases: [
          { name: "main", state: "not_migrated", reachable: true, migrations: { applied: shipped - 1, shipped } },
        ],
      });
    });
  });

  it("/ready answers 503 when a database is unreachable", async () => {
    const port = await freePort();
    const sdk = createSdk({
      topology: {
        databases: { main: { url: `postgres://nobody:x@127.0.0.1:${port}/none`, pool: { connectTimeoutSeconds: 2 } } },
      },
    });
    try {
      const res = await createApp(sdk, { logRequests: false }).request("/ready");
      expect(res.status).toBe(503);
      expect(await problemOf(res)).toMatchObject({
        code: "NOT_READY",
        databases: [{ name: "main", state: "unreachable", reachable: false }],
      });
    } finally {
      await sdk.close();
    }
  });

  it("/ready stays 200 (degraded) while only a database other than the control plane is unreachable, 503 when strict", async () => {
    const port = await freePort();
    const { url, appUrl } = inject("svTestDatabase");
    const sdk = createSdk({
      topology: {
        databases: {
          main: { url, appUrl },
          tenant_db: { url: `postgres://nobody:x@127.0.0.1:${port}/none`, pool: { connectTimeoutSeconds: 2 } },
        },
      },
    });
    try {
      const served = createApp(sdk, { logRequests: false });
      const res = await served.request("/ready");
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        status: "degraded",
        databases: [
          { name: "main", state: "ready" },
          { name: "tenant_db", state: "unreachable", reachable: false },
        ],
      });
      expect((await served.request("/ready?strict=1")).status).toBe(503);
    } finally {
      await sdk.close();
    }
  });
});

describe("API description", () => {
  it("/openapi.json is a valid OpenAPI 3.1.0 document", async () => {
    const res = await app.request("/openapi.json");
    expect(res.status).toBe(200);
    const document = (await res.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(document.openapi).toBe("3.1.0");
    expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(["/health", "/ready", "/test-only/echo"]));
    const result = await validate(structuredClone(document) as never);
    expect(result.valid, result.valid ? "" : compileErrors(result)).toBe(true);
  });

  it("documents the 503 TENANT_MOVING every /api/v1 write can meet, and only there", async () => {
    const document = (await (await app.request("/openapi.json")).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, { description: string }> }>>;
    };
    const writes = Object.entries(document.paths)
      .filter(([path]) => path.startsWith("/api/v1/"))
      .flatMap(([path, item]) =>
        ["post", "put", "patch", "delete"].filter((m) => item[m]).map((m) => [path, m] as const),
      );
    expect(writes.length).toBeGreaterThan(10);
    for (const [path, method] of writes)
      expect(document.paths[path]![method]!.responses["503"], `${method} ${path}`).toBeDefined();
    expect(document.paths["/api/v1/permissions/roles"]!.post!.responses["503"]!.description).toContain("TENANT_MOVING");
    expect(document.paths["/api/v1/permissions/roles"]!.get!.responses["503"]).toBeUndefined();
    expect(document.paths["/api/auth/sign-in/email"]!.post!.responses["503"]).toBeUndefined();
  });

  it("/docs renders an HTML page listing the paths", async () => {
    const res = await app.request("/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    const html = await res.text();
    expect(html).toContain("<code>/health</code>");
    expect(html).toContain("<code>/ready</code>");
    expect(html).toContain("<code>/test-only/echo</code>");
  });
});
