/**
 * Point 6 of the audit contract: every mutating route under /api/v1 writes exactly one audit event.
 * The routes come from /openapi.json, so a new mutating route without an entry in CALLS fails here.
 * Each call runs, signed in as a tenant owner, inside one rolled-back unit of work; the audit rows
 * of a call are found by its request id.
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { fromDatabasesOf, json, signedInUser, tenantOf, useTestSdk } from "../../../test/support.js";
import { withRollback } from "../../testing/rollback.js";
import { addTestMember } from "../../testing.js";

const { sdk, app } = useTestSdk();
const MUTATING = new Set(["post", "put", "patch", "delete"]);

interface State {
  headers: Record<string, string>;
  otherUserId: string;
  roleId?: string;
  assignmentId?: string;
  templateId?: string;
}

interface Call {
  /**
   * Events the call must write: 1 for a change; 0 only for POST routes that read; more only for a
   * call that makes several facts at once (documented at its entry).
   */
  events: number;
  request: (s: State) => { path: string; init: RequestInit };
  /** Keeps what later calls need (ids). */
  after?: (s: State, body: unknown) => void;
}

const send = (method: string, path: string, s: State, body?: unknown) => ({
  path,
  init: body === undefined ? { method, headers: s.headers } : json(method, body, s.headers),
});
const roleName = `coverage-${randomUUID().slice(0, 8)}`;

/** In execution order: later calls use what earlier ones created. Keyed "METHOD /path" as in OpenAPI. */
const CALLS: [string, Call][] = [
  [
    "POST /api/v1/permissions/roles",
    {
      events: 1,
      request: (s) => send("POST", "/api/v1/permissions/roles", s, { name: roleName, permissions: ["audit:read"] }),
      after: (s, b) => (s.roleId = (b as { id: string }).id),
    },
  ],
  [
    "PATCH /api/v1/permissions/roles/{roleId}",
    {
      events: 1,
      request: (s) => send("PATCH", `/api/v1/permissions/roles/${s.roleId}`, s, { description: "changed" }),
    },
  ],
  [
    "POST /api/v1/permissions/roles/{roleId}/permissions",
    {
      events: 1,
      request: (s) =>
        send("POST", `/api/v1/permissions/roles/${s.roleId}/permissions`, s, { permissions: ["roles:read"] }),
    },
  ],
  [
    "DELETE /api/v1/permissions/roles/{roleId}/permissions/{permission}",
    {
      events: 1,
      request: (s) => send("DELETE", `/api/v1/permissions/roles/${s.roleId}/permissions/roles:read`, s),
    },
  ],
  [
    "PUT /api/v1/permissions/roles/{roleId}/parents",
    {
      events: 1,
      request: (s) => send("PUT", `/api/v1/permissions/roles/${s.roleId}/parents`, s, { parents: ["auditor"] }),
    },
  ],
  [
    "POST /api/v1/permissions/assignments",
    {
      events: 1,
      request: (s) => send("POST", "/api/v1/permissions/assignments", s, { userId: s.otherUserId, role: s.roleId }),
      after: (s, b) => (s.assignmentId = (b as { id: string }).id),
    },
  ],
  [
    "DELETE /api/v1/permissions/assignments/{assignmentId}",
    {
      events: 1,
      request: (s) => send("DELETE", `/api/v1/permissions/assignments/${s.assignmentId}`, s),
    },
  ],
  [
    "DELETE /api/v1/permissions/roles/{roleId}",
    {
      events: 1,
      request: (s) => send("DELETE", `/api/v1/permissions/roles/${s.roleId}`, s),
    },
  ],
  // A question asked with a body: it changes nothing, so it writes nothing.
  [
    "POST /api/v1/permissions/check",
    {
      events: 0,
      request: (s) => send("POST", "/api/v1/permissions/check", s, { permissions: ["audit:read"] }),
    },
  ],
  [
    "POST /api/v1/email/templates",
    {
      events: 1,
      request: (s) =>
        send("POST", "/api/v1/email/templates", s, {
          key: "welcome",
          locale: "de",
          subject: "Hallo",
          html: "<p>Hallo</p>",
          text: "Hallo",
        }),
      after: (s, b) => (s.templateId = (b as { id: string }).id),
    },
  ],
  // Renders a template without storing anything.
  [
    "POST /api/v1/email/templates/preview",
    {
      events: 0,
      request: (s) => send("POST", "/api/v1/email/templates/preview", s, { key: "welcome", locale: "de" }),
    },
  ],
  [
    "PATCH /api/v1/email/templates/{id}",
    {
      events: 1,
      request: (s) => send("PATCH", `/api/v1/email/templates/${s.templateId}`, s, { subject: "Hello" }),
    },
  ],
  [
    "DELETE /api/v1/email/templates/{id}",
    {
      events: 1,
      request: (s) => send("DELETE", `/api/v1/email/templates/${s.templateId}`, s),
    },
  ],
  [
    "PUT /api/v1/email/preferences",
    {
      events: 1,
      request: (s) =>
        send("PUT", "/api/v1/email/preferences", s, { preferences: [{ category: "product", optedOut: true }] }),
    },
  ],
  // Three facts: the tenant (tenant.created), its creator as its first member (member.added) and the
  // owner's role in it (role.assigned) — the events better-auth's own organization create records.
  [
    "POST /api/v1/tenants",
    {
      events: 3,
      request: (s) => send("POST", "/api/v1/tenants", s, { name: "Coverage", slug: `coverage-${randomUUID()}` }),
    },
  ],
];

/**
 * Mutating routes this harness cannot call with a plain signed-in request, and why. They are listed
 * so that the set is explicit; each needs its own audit assertion in its module's tests.
 */
const NOT_CALLABLE_HERE: Record<string, string> = {
  "POST /api/v1/email/webhooks/resend":
    "needs a Svix-signed provider payload (covered by the email module's webhook tests)",
  "POST /api/v1/email/unsubscribe": "needs a signed one-click unsubscribe token (covered by the email module's tests)",
};

async function mutatingOperations(): Promise<string[]> {
  const doc = (await (await app.request("/openapi.json")).json()) as { paths: Record<string, Record<string, unknown>> };
  return Object.entries(doc.paths)
    .filter(([path]) => path.startsWith("/api/v1/"))
    .flatMap(([path, ops]) =>
      Object.keys(ops)
        .filter((m) => MUTATING.has(m))
        .map((m) => `${m.toUpperCase()} ${path}`),
    );
}

async function auditRowsOf(requestId: string): Promise<number> {
  const rows = await fromDatabasesOf(sdk, "audit", async () => [
    ...(await sdk.router
      .db("audit")
      .execute<{ n: number }>(sql`select count(*)::int as n from audit.audit_logs where request_id = ${requestId}`)),
  ]);
  return rows.reduce((sum, row) => sum + row.n, 0);
}

describe("audit coverage of mutating routes", () => {
  it("has a call (or a stated reason) for every mutating /api/v1 operation in /openapi.json", async () => {
    const operations = await mutatingOperations();
    expect(operations.length).toBeGreaterThan(0);
    const known = new Set([...CALLS.map(([op]) => op), ...Object.keys(NOT_CALLABLE_HERE)]);
    expect(operations.filter((op) => !known.has(op))).toEqual([]);
  });

  it("writes exactly one audit event per successful mutating call", async () => {
    const operations = new Set(await mutatingOperations());
    const results: { op: string; status: number; events: number; expected: number; body?: unknown }[] = [];
    await withRollback(sdk, async () => {
      const owner = await signedInUser(sdk);
      const other = await signedInUser(sdk);
      const { tenant, headers } = await tenantOf(sdk, owner);
      await addTestMember(sdk, tenant.id, other.user.id); // tenant roles go to members only
      const state: State = { headers, otherUserId: other.user.id };
      for (const [op, call] of CALLS) {
        if (!operations.has(op)) continue; // a route that no longer exists
        const { path, init } = call.request(state);
        const res = await app.request(path, init);
        const body = res.status === 204 ? null : await res.json().catch(() => null);
        if (res.ok) call.after?.(state, body);
        const requestId = res.headers.get("x-request-id")!;
        results.push({
          op,
          status: res.status,
          events: await auditRowsOf(requestId),
          expected: call.events,
          ...(res.ok ? {} : { body }),
        });
      }
    });
    // A failing call proves nothing about auditing: each must succeed.
    expect(results.filter((r) => r.status >= 300)).toEqual([]);
    expect(results.length).toBeGreaterThan(0);
    expect(results.filter((r) => r.events !== r.expected)).toEqual([]);
  });
});
