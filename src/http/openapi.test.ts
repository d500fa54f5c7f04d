/**
 * The merged OpenAPI document describes every response of every operation as the server answers it,
 * and both ways to authenticate. (Its validity as OpenAPI 3.1 is checked in src/app.test.ts.)
 */
import { beforeAll, describe, expect, it } from "vitest";
import { json, signedInUser, TEST_ORIGIN, useTestSdk } from "../../test/support.js";
import { withRollback } from "../testing/rollback.js";
import type { OpenApiDocument } from "./openapi.js";

const { sdk, app } = useTestSdk();

interface Response {
  description: string;
  content?: Record<string, { schema?: { $ref?: string } }>;
  headers?: Record<string, unknown>;
}
interface Operation {
  tags?: string[];
  summary?: string;
  security?: Record<string, string[]>[];
  responses: Record<string, Response>;
}

let document: OpenApiDocument;
const all: [name: string, operation: Operation][] = [];
const operation = (method: string, path: string) => document.paths[path]![method] as Operation;

beforeAll(async () => {
  document = (await (await app.request("/openapi.json")).json()) as OpenApiDocument;
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (["get", "put", "post", "delete", "patch"].includes(method))
        all.push([`${method.toUpperCase()} ${path}`, op as Operation]);
    }
  }
});

describe("responses", () => {
  it("every operation documents its success; only better-auth's OAuth callback answers with a redirect instead", () => {
    expect(all.length).toBeGreaterThan(100);
    const withoutSuccess = all.filter(([, op]) => !Object.keys(op.responses).some((status) => /^2\d\d$/.test(status)));
    expect(withoutSuccess.map(([name]) => name).sort()).toEqual([
      "GET /api/auth/callback/{id}",
      "POST /api/auth/callback/{id}",
    ]);
    for (const [, op] of withoutSuccess) expect(op.responses["302"]?.headers).toHaveProperty("Location");
    // The ones better-auth's generator leaves without one are filled in with their real bodies.
    expect(
      operation("get", "/api/auth/organization/list-members").responses["200"]!.content!["application/json"]!.schema,
    ).toMatchObject({
      properties: { members: { type: "array" }, total: { type: "integer" } },
    });
  });

  it("every error, listed or not, is problem+json with the Problem schema", () => {
    for (const [name, op] of all) {
      expect(op.responses.default, name).toBeDefined();
      for (const [status, response] of Object.entries(op.responses)) {
        if (status !== "default" && Number(status) < 400) continue;
        expect(response.content?.["application/problem+json"]?.schema, `${name} ${status}`).toEqual({
          $ref: "#/components/schemas/Problem",
        });
        expect(Object.keys(response.content!), `${name} ${status}`).toEqual(["application/problem+json"]);
      }
    }
  });

  it("matches what better-auth's routes answer through the app: a refused sign-in is a 401 problem", () =>
    withRollback(sdk, async () => {
      const user = await signedInUser(sdk);
      const res = await app.request(
        "/api/auth/sign-in/email",
        json("POST", { email: user.user.email, password: "not the password" }, { origin: TEST_ORIGIN }),
      );
      expect(res.status).toBe(401);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
      expect(operation("post", "/api/auth/sign-in/email").responses["401"]!.content).toHaveProperty(
        "application/problem+json",
      );
    }));

  it("sign-in documents the bearer token header next to its body", () => {
    const ok = operation("post", "/api/auth/sign-in/email").responses["200"]!;
    expect(ok.headers).toHaveProperty("set-auth-token");
    expect(ok.content!["application/json"]).toBeDefined();
  });
});

describe("authentication", () => {
  it("declares the session cookie and the bearer token, and nothing else", () => {
    expect(document.components?.securitySchemes).toEqual({
      bearerAuth: expect.objectContaining({ type: "http", scheme: "bearer" }),
      cookieAuth: expect.objectContaining({ type: "apiKey", in: "cookie", name: "sv.session_token" }),
    });
    const declared = Object.keys(document.components!.securitySchemes!);
    for (const [name, op] of all) {
      for (const requirement of op.security ?? [])
        for (const scheme of Object.keys(requirement)) expect(declared, name).toContain(scheme);
    }
  });

  it("names the cookie sign-in really sets", () =>
    withRollback(sdk, async () => {
      const { cookie } = await signedInUser(sdk);
      const scheme = document.components!.securitySchemes!.cookieAuth as { name: string };
      expect(cookie.split("; ").map((pair) => pair.split("=")[0])).toContain(scheme.name);
    }));

  it("asks for a session (either scheme) where one is needed, and for none to sign up or in", () => {
    const either = [{ bearerAuth: [] }, { cookieAuth: [] }];
    expect(operation("get", "/api/v1/me").security).toEqual(either);
    expect(operation("post", "/api/v1/permissions/roles").security).toEqual(either);
    expect(operation("post", "/api/auth/organization/create").security).toEqual(either);
    expect(operation("post", "/api/auth/sign-up/email").security).toEqual([]);
    expect(operation("post", "/api/auth/sign-in/email").security).toEqual([]);
    expect(operation("get", "/api/auth/get-session").security).toEqual([{}, ...either]);
    expect(operation("get", "/health").security).toBeUndefined();
    expect(operation("post", "/api/v1/email/unsubscribe").security).toBeUndefined();
  });
});

describe("navigation", () => {
  it("groups better-auth's routes under named tags, each declared, with titles", () => {
    const tags = (document.tags ?? []).map((tag) => tag.name);
    expect(tags[0]).toBe("Auth");
    expect(tags).not.toContain("Default");
    for (const [name, op] of all) for (const tag of op.tags ?? []) expect(tags, name).toContain(tag);
    expect(operation("post", "/api/auth/sign-in/email").tags).toEqual(["Auth"]);
    expect(operation("post", "/api/auth/organization/create").tags).toEqual(["Tenants"]);
    expect(operation("post", "/api/auth/sign-in/email").summary).toBe("Sign in with email and password");
  });
});
