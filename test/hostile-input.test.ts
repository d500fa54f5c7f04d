/**
 * Hostile input, generated (issue 13, point 9): every operation of /openapi.json gets bad requests
 * from fast-check — wrong types, missing and extra fields, huge and deeply nested JSON, NUL bytes,
 * lone surrogates, invalid UTF-8, wrong content types, unknown ids and another tenant's, tampered
 * cursors, oversized bodies, bad query strings, odd path characters — sent over ONE keep-alive
 * connection to a real HTTP server, run as users run it: rate limiting on, the cookie cache on, the
 * default (OWASP) password cost, a pool of 3 connections, on a database of its own.
 *
 * For the whole run: never a 5xx; every 4xx is application/problem+json with a `code`; never a
 * dropped connection or a response to the wrong request; and no row written — the row counts of
 * every table of the four schemas are compared after every request (so a write is pinned to the
 * request that made it), and before/after the run. The only writes allowed are listed in
 * `ALLOWED` (test/hostile/rows.ts) with their reason.
 *
 * Bounded: HOSTILE_RUNS requests per operation (default 30) and HOSTILE_TIME_LIMIT_S (default 600).
 * Replay: HOSTILE_SEED=<the seed printed> (and HOSTILE_ROUTES="POST /api/v1/permissions/roles,…" to
 * run only some operations; each operation's samples depend only on the seed and the operation).
 * HOSTILE_REPORT=<file> also writes the full report there.
 */
import { startServer, type RunningServer } from "../src/http/serve.js";
import fc from "fast-check";
import { randomBytes, randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createApp } from "../src/app.js";
import { freePort } from "../src/db/embedded.js";
import { createSdk, type Sdk } from "../src/index.js";
import type { Logger } from "../src/logger.js";
import { createIsolatedDatabase, type IsolatedDatabase } from "../src/testing/database.js";
import { createTestTenant, createTestUser, TEST_ORIGIN, type TestUser } from "../src/testing/factories.js";
import { badRequests, buildRequest, type ActorFixture, type Fixtures, type Plan } from "./hostile/arbitraries.js";
import { KeepAliveClient, type RawRequest, type RawResponse } from "./hostile/client.js";
import { operationsOf, type Operation } from "./hostile/openapi.js";
import { formatReport, showBytes, type Failure } from "./hostile/report.js";
import { ALLOWED, changes, rowCounter, unexplained, type Counts } from "./hostile/rows.js";

const RUNS = Number(process.env.HOSTILE_RUNS ?? 30);
const TIME_LIMIT_MS = Number(process.env.HOSTILE_TIME_LIMIT_S ?? 600) * 1000;
const SEED = process.env.HOSTILE_SEED ? Number(process.env.HOSTILE_SEED) : randomBytes(4).readUInt32BE() >>> 1;
const ONLY = process.env.HOSTILE_ROUTES?.split(",")
  .map((s) => s.trim())
  .filter(Boolean);
const BODY_LIMIT = 1024 * 1024;

/** A per-operation seed: one operation's samples do not depend on which others run. */
function seedOf(key: string): number {
  let h = SEED;
  for (const ch of key) h = (Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0) & 0x7fffffff;
  return h;
}

describe("hostile input, generated, against a real server", () => {
  let database: IsolatedDatabase;
  let sdk: Sdk;
  let server: RunningServer | undefined;
  let client: KeepAliveClient;
  let owner: postgres.Sql;
  let fixtures: Fixtures;
  let operations: Operation[];
  let counter: Awaited<ReturnType<typeof rowCounter>>;
  let requestNumber = 0;
  /** Error logs of the server since the last request was sent (requests run one at a time). */
  let serverErrors: string[] = [];
  let inFlight = 0;
  const idleWaiters: (() => void)[] = [];
  /** Resolves when the server has no request in flight (or after `ms`: then says so). */
  const serverIdle = (ms: number) =>
    new Promise<boolean>((resolve) => {
      if (inFlight === 0) return resolve(true);
      const timer = setTimeout(() => resolve(false), ms);
      idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  /** Writes the test makes on purpose, after the baseline (restored sessions). */
  const deliberate: string[] = [];
  /** Row changes already accounted for: reported against a request, or deliberate. */
  const accounted: Record<string, number> = {};
  const account = (delta: Record<string, number>) => {
    for (const [table, n] of Object.entries(delta)) accounted[table] = (accounted[table] ?? 0) + n;
  };

  const logger: Logger = {
    debug() {},
    info() {},
    warn() {},
    error(message, fields) {
      const error = (fields?.error ?? fields?.details) as
        | { message?: string; stack?: string; cause?: { message?: string } }
        | string
        | undefined;
      let text = typeof error === "string" ? error : (error?.message ?? JSON.stringify(error ?? fields ?? {}));
      if (typeof error === "object" && error?.cause?.message) text += ` (cause: ${error.cause.message})`;
      const at =
        typeof error === "object" && error?.stack
          ? ` @ ${error.stack
              .split("\n")
              .slice(1, 3)
              .map((l) => l.trim())
              .join(" ← ")}`
          : "";
      serverErrors.push(`${message}: ${text}${at}`.slice(0, 600));
    },
  };

  const send = (request: RawRequest) => {
    serverErrors = [];
    return client.send(request, `hostile-${++requestNumber}`);
  };

  /** A deliberate request of the set-up (its answer must be 2xx). */
  async function setupRequest(method: string, path: string, headers: Record<string, string>, body?: unknown) {
    const res = await send({
      method,
      path,
      headers: { accept: "application/json", ...headers, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? Buffer.from(JSON.stringify(body)) : undefined,
    });
    if (!res || res.status >= 300)
      throw new Error(`set-up request ${method} ${path} failed: ${res?.status} ${res?.body.toString()}`);
    return JSON.parse(res.body.toString() || "null") as Record<string, unknown>;
  }

  async function actorFixture(label: "A" | "B", user: TestUser, tenantId: string): Promise<ActorFixture> {
    const roleName = `hostile-role-${label.toLowerCase()}`;
    const scope = { tenant: tenantId };
    const role = await sdk.permissions.createRole(
      { name: roleName, permissions: ["audit:read", "email.templates:read"] },
      scope,
    );
    const assignment = await sdk.permissions.assignRole(user.user.id, role.id, scope);
    const template = await sdk.email.createTemplate({
      tenantId,
      input: {
        key: "welcome",
        locale: "en",
        subject: `Welcome to ${label}`,
        html: "<p>Hello {{name}}</p>",
        text: "Hello {{name}}",
      },
    });
    const invitation = (await sdk.auth.api.createInvitation({
      body: {
        email: `invitee-${label.toLowerCase()}-${randomUUID()}@example.test`,
        role: "member",
        organizationId: tenantId,
      },
      headers: new Headers({ cookie: user.cookie }),
    })) as { id: string };
    const [member] = await owner<
      { id: string }[]
    >`select id from auth.members where user_id = ${user.user.id} and organization_id = ${tenantId}`;
    const [org] = await owner<{ slug: string }[]>`select slug from auth.organizations where id = ${tenantId}`;
    // A real cursor: the tenant has more than one audit event by now (tenant, role, template, invitation).
    const page = await setupRequest("GET", "/api/v1/audit/events?limit=1", {
      authorization: `Bearer ${user.token}`,
      "x-tenant-id": tenantId,
    });
    if (typeof page.nextCursor !== "string") throw new Error(`no audit cursor for ${label}: ${JSON.stringify(page)}`);
    return {
      label,
      user: user.user,
      password: user.password,
      cookie: user.cookie,
      token: user.token,
      tenantId,
      tenantSlug: org!.slug,
      roleId: role.id,
      roleName,
      assignmentId: assignment.id,
      templateId: template.id,
      invitationId: invitation.id,
      memberId: member!.id,
      cursor: page.nextCursor,
    };
  }

  beforeAll(async () => {
    database = await createIsolatedDatabase(inject("svTestDatabase"));
    owner = postgres(database.url, { max: 1, onnotice: () => {} });
    // As `npm start` builds it, without the test shortcuts: rate limiting on (the default), the
    // cookie cache on (the default), the default password cost, a small pool. Background workers
    // (audit sealer, email dispatcher) are not started: they write rows on their own schedule.
    sdk = createSdk({
      topology: { databases: { main: { url: database.url, pool: { max: 3 } } } },
      environment: "development",
      logger,
      auth: { secret: randomBytes(32).toString("base64url"), baseUrl: TEST_ORIGIN },
      email: {
        webhookSecret: `whsec_${randomBytes(24).toString("base64")}`,
        unsubscribeSecret: randomBytes(32).toString("base64url"),
        publicUrl: TEST_ORIGIN,
      },
    });
    await sdk.auth.listen();
    const app = createApp(sdk, { bodyLimitBytes: BODY_LIMIT });
    const port = await freePort();
    // app.fetch as is, counting the requests in flight: a request whose connection broke may still
    // be running (and write) after the client gave up, and its writes must be pinned on it.
    const fetch: typeof app.fetch = (request, env, ctx) => {
      inFlight++;
      const done = () => {
        if (--inFlight === 0) for (const wake of idleWaiters.splice(0)) wake();
      };
      try {
        const response = app.fetch(request, env, ctx);
        if (response instanceof Promise) return response.finally(done);
        done();
        return response;
      } catch (error) {
        done();
        throw error;
      }
    };
    // The server as src/server.ts runs it (its limits, and its answer to requests Node cannot parse).
    server = await startServer(fetch, { port, hostname: "127.0.0.1" });
    client = new KeepAliveClient(port);

    const a = await createTestUser(sdk, { name: "Owner A" });
    const b = await createTestUser(sdk, { name: "Owner B" });
    const tenantA = await createTestTenant(sdk, a, "Tenant A");
    const tenantB = await createTestTenant(sdk, b, "Tenant B");
    fixtures = {
      A: await actorFixture("A", a, tenantA.tenant.id),
      B: await actorFixture("B", b, tenantB.tenant.id),
      origin: TEST_ORIGIN,
      bodyLimitBytes: BODY_LIMIT,
    };
    // Lazily created rows a read may legitimately cause, created here on purpose: the JWKS key pair
    // (first /jwks or /token), and the permission cache of every user in every tenant (first check).
    await setupRequest("GET", "/api/auth/jwks", {});
    for (const userId of [a.user.id, b.user.id]) {
      for (const tenant of [null, tenantA.tenant.id, tenantB.tenant.id])
        await sdk.permissions.permissionsOf(userId, { tenant });
    }
    operations = operationsOf((await setupRequest("GET", "/openapi.json", {})) as never);
    counter = await rowCounter(owner);
  }, 120_000);

  afterAll(async () => {
    client?.close();
    await server?.close({ graceMs: 1_000 });
    await sdk?.close();
    await owner?.end({ timeout: 5 });
    await database?.drop();
  });

  /** A health request; a connection problem is the previous request's doing, so it is retried once. */
  async function probe(headers: Record<string, string>): Promise<RawResponse | undefined> {
    return (
      (await send({ method: "GET", path: "/api/v1/me", headers })) ??
      (await send({ method: "GET", path: "/api/v1/me", headers }))
    );
  }

  /** Whether both users' sessions still work (cookie and bearer); restores a lost one. */
  async function checkSessions(after: string, failures: Failure[]) {
    for (const actor of [fixtures.A, fixtures.B]) {
      const viaCookie = await probe({ cookie: actor.cookie, origin: TEST_ORIGIN });
      const viaToken = await probe({ authorization: `Bearer ${actor.token}` });
      if (viaCookie?.status === 200 && viaToken?.status === 200) continue;
      failures.push({
        route: after,
        index: -1,
        requestId: `hostile-${requestNumber}`,
        defects: [],
        auth: actor.label,
        request: { method: "GET", path: "/api/v1/me", headers: {}, body: "(empty)", chunked: false },
        response: viaToken
          ? {
              status: viaToken.status,
              contentType: String(viaToken.headers["content-type"]),
              body: showBytes(viaToken.body),
              connection: viaToken.connection,
            }
          : undefined,
        reasons: [
          `session lost: ${actor.label}'s session no longer works after the requests of ${after} (cookie ${viaCookie?.status}, bearer ${viaToken?.status})`,
        ],
        serverLog: [],
      });
      const signIn = await sdk.auth.api.signInEmail({
        body: { email: actor.user.email, password: actor.password },
        returnHeaders: true,
      });
      const cookie = signIn.headers
        .getSetCookie()
        .map((line) => line.split(";")[0]!)
        .filter((pair) => !pair.endsWith("="))
        .join("; ");
      actor.cookie = cookie;
      actor.token = signIn.headers.get("set-auth-token") ?? (signIn.response as { token: string }).token;
      deliberate.push(`a new session for ${actor.label} after ${after} (sessions +1, audit user.signed_in +1)`);
    }
  }

  function judge(
    plan: Plan,
    index: number,
    built: ReturnType<typeof buildRequest>,
    requestId: string,
    res: RawResponse | undefined,
    written: Record<string, number>,
    incidents: string[],
    previous: string | undefined,
  ): Failure | undefined {
    const reasons: string[] = [];
    if (!res) reasons.push("no response: the connection failed");
    else {
      const type = String(res.headers["content-type"] ?? "");
      if (res.status >= 500) reasons.push(`5xx: ${res.status}`);
      if (res.status >= 400 && res.status < 500) {
        let code: unknown;
        try {
          code = (JSON.parse(res.body.toString("utf8")) as { code?: unknown }).code;
        } catch {
          code = undefined;
        }
        if (!type.startsWith("application/problem+json"))
          reasons.push(`4xx not problem+json: Content-Type ${type || "(none)"}`);
        else if (typeof code !== "string" || !code) reasons.push("4xx problem without a code");
      }
    }
    for (const incident of incidents) reasons.push(`connection: ${incident}`);
    // A connection that fails here may have been broken by the request before it on the same connection.
    if ((incidents.length || !res) && previous)
      reasons.push(`connection-context: the requests before it were ${previous}`);
    if (Object.keys(written).length) reasons.push(`rows written: ${JSON.stringify(written)}`);
    if (!reasons.length) return undefined;
    return {
      route: plan.op.key,
      index,
      requestId,
      defects: plan.defects.map((d) => d.label),
      auth: plan.auth.kind === "none" ? "none" : `${plan.auth.actor} ${plan.auth.kind}`,
      request: {
        method: built.request.method,
        path: built.request.path,
        headers: built.describeHeaders,
        body: showBytes(built.request.body),
        chunked: built.request.chunked ?? false,
      },
      response: res
        ? {
            status: res.status,
            contentType: String(res.headers["content-type"] ?? ""),
            body: showBytes(res.body, 600),
            connection: res.connection,
          }
        : undefined,
      reasons,
      serverLog: serverErrors.slice(),
    };
  }

  it(
    `refuses every generated bad request cleanly, on one connection, writing nothing (${RUNS} per operation)`,
    async () => {
      const started = performance.now();
      const failures: Failure[] = [];
      const statuses = new Map<number, number>();
      const routeSeconds = new Map<string, number>();
      const trace: string[] = [];
      let countMs = 0;
      const baseline = await counter.count();
      let previous: Counts = baseline;
      let sent = 0;
      let timedOut: string | undefined;
      /**
       * The last two requests and how they ended, for failures of the connection after them (after a
       * refused body the connection can fail on the next request or on the one after it).
       */
      let recent: string[] = [];
      const previousOf = () => (recent.length ? recent.join(", then ") : undefined);
      const selected = operations.filter((op) => !ONLY || ONLY.some((o) => op.key === o || op.key.includes(o)));
      expect(selected.length, "operations to run").toBeGreaterThan(0);

      for (const op of selected) {
        if (performance.now() - started > TIME_LIMIT_MS) {
          timedOut = op.key;
          break;
        }
        const routeStarted = performance.now();
        const plans = fc.sample(badRequests(op, fixtures), { seed: seedOf(op.key), numRuns: RUNS });
        for (const [index, plan] of plans.entries()) {
          const built = buildRequest(plan, fixtures);
          const incidentsBefore = client.incidents.length;
          const requestId = `hostile-${requestNumber + 1}`;
          const res = await send(built.request);
          sent++;
          if (res) statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          // A request the client saw fail may still be running on the server: let it finish first.
          const idle = await serverIdle(30_000);
          const countStarted = performance.now();
          const now = await counter.count();
          countMs += performance.now() - countStarted;
          const written = unexplained(previous, now);
          account(written);
          previous = now;
          // Incidents of this request; an unannounced close shows up after the answer, so wait a tick.
          await new Promise((r) => setImmediate(r));
          const incidents = client.incidents
            .slice(incidentsBefore)
            .map((i) => `${i.kind} (${i.detail}) during ${i.requestId}`);
          if (process.env.HOSTILE_TRACE) {
            trace.push(
              JSON.stringify({
                requestId,
                route: op.key,
                index,
                status: res?.status,
                ms: res?.ms,
                bytes: built.request.body?.length ?? 0,
                defects: plan.defects.map((d) => d.label),
              }),
            );
          }
          if (!idle) incidents.push("the server was still handling requests 30 s after the answer");
          const failure = judge(plan, index, built, requestId, res, written, incidents, previousOf());
          if (failure) failures.push(failure);
          recent = [
            ...recent,
            `${requestId} (${op.key}#${index}: ${plan.defects.map((d) => d.label).join("; ")} → ${res ? res.status : "no response"})`,
          ].slice(-2);
        }
        const incidentsBefore = client.incidents.length;
        await checkSessions(op.key, failures);
        // The health requests ride the same connection: a problem there is the last request's doing.
        const healthIncidents = client.incidents.slice(incidentsBefore);
        if (healthIncidents.length) {
          failures.push({
            route: op.key,
            index: -1,
            requestId: healthIncidents[0]!.requestId,
            defects: [],
            auth: "-",
            request: {
              method: "GET",
              path: "/api/v1/me (health check after the operation's requests)",
              headers: {},
              body: "(empty)",
              chunked: false,
            },
            reasons: [
              ...healthIncidents.map((incident) => `connection: ${incident.kind} (${incident.detail})`),
              `connection-context: the requests before it were ${previousOf()}`,
            ],
            serverLog: [],
          });
        }
        recent = ["health checks (GET /api/v1/me) → 200"];
        routeSeconds.set(op.key, (performance.now() - routeStarted) / 1000);
        // Restored sessions are deliberate writes: the next request is compared with what they left.
        const restored = await counter.count();
        account(unexplained(previous, restored));
        previous = restored;
      }

      const final = await counter.count();
      // Writes no request window saw (made after its count, e.g. in the background).
      const total = unexplained(baseline, final);
      const stray = Object.fromEntries(
        Object.keys({ ...total, ...accounted })
          .map((t) => [t, (total[t] ?? 0) - (accounted[t] ?? 0)] as const)
          .filter(([, n]) => n !== 0),
      );
      if (Object.keys(stray).length) {
        failures.push({
          route: "(the whole run)",
          index: -1,
          requestId: "-",
          defects: [],
          auth: "-",
          request: { method: "-", path: "-", headers: {}, body: "-", chunked: false },
          reasons: [`rows written outside any request's window: ${JSON.stringify(stray)}`],
          serverLog: [],
        });
      }
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      const summary = [
        `hostile input: seed ${SEED}, ${selected.length} operations, ${sent} requests in ${seconds} s on ${client.connectionsOpened} connection(s)`,
        `  statuses: ${[...statuses.entries()]
          .sort((x, y) => x[0] - y[0])
          .map(([s, n]) => `${s}×${n}`)
          .join(" ")}`,
        `  time counting rows: ${(countMs / 1000).toFixed(1)} s`,
        `  slowest operations: ${[...routeSeconds.entries()]
          .sort((x, y) => y[1] - x[1])
          .slice(0, 5)
          .map(([k, t]) => `${k} ${t.toFixed(1)} s`)
          .join(", ")}`,
        `  connections the server closed after Connection: close: ${client.announcedCloses}; idle closes: ${client.idleCloses}`,
        `  rows changed over the run (allowed: ${Object.entries(ALLOWED)
          .map(([t, why]) => `${t} — ${why}`)
          .join("; ")}): ${JSON.stringify(changes(baseline, final))}`,
        ...(deliberate.length ? [`  deliberate writes after the baseline: ${deliberate.join("; ")}`] : []),
        ...(timedOut ? [`  TIME LIMIT (${TIME_LIMIT_MS / 1000} s) reached before ${timedOut}`] : []),
        `  replay: HOSTILE_SEED=${SEED} npx vitest run test/hostile-input.test.ts`,
      ].join("\n");
      const report = `${summary}\n\n${failures.length ? formatReport(failures) : "no failing case"}`;
      console.log(report);
      if (process.env.HOSTILE_TRACE) writeFileSync(process.env.HOSTILE_TRACE, `${trace.join("\n")}\n`);
      if (process.env.HOSTILE_REPORT)
        writeFileSync(
          process.env.HOSTILE_REPORT,
          `${report}\n\n${failures.map((f) => JSON.stringify(f)).join("\n")}\n`,
        );

      expect(timedOut, `the run hit its time bound before ${timedOut} (seed ${SEED})`).toBeUndefined();
      expect(failures.length, `${formatReport(failures, 2)}\n\nseed ${SEED}: replay with HOSTILE_SEED=${SEED}`).toBe(0);
    },
    TIME_LIMIT_MS + 120_000,
  );
});
