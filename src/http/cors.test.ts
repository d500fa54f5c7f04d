import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { describe, expect, it } from "vitest";
import { TEST_ORIGIN, useTestSdk } from "../../test/support.js";

const { app } = useTestSdk();

describe("CORS", () => {
  it("answers a trusted origin's preflight with what it may send", async () => {
    const res = await app.request("/api/v1/me", {
      method: "OPTIONS",
      headers: {
        origin: TEST_ORIGIN,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(TEST_ORIGIN);
    expect(res.headers.get("access-control-allow-credentials")).toBe("true");
    expect(res.headers.get("access-control-allow-headers")).toContain("x-tenant-id");
    expect(res.headers.get("vary")).toContain("Origin");
  });

  it("gives an untrusted origin's preflight no permission", async () => {
    const res = await app.request("/api/v1/me", {
      method: "OPTIONS",
      headers: { origin: "https://evil.example", "access-control-request-method": "POST" },
    });
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
  });

  it("marks real responses for trusted origins only, and always varies on Origin", async () => {
    const trusted = await app.request("/api/v1/me", { headers: { origin: TEST_ORIGIN } });
    expect(trusted.status).toBe(401);
    expect(trusted.headers.get("access-control-allow-origin")).toBe(TEST_ORIGIN);
    expect(trusted.headers.get("access-control-expose-headers")).toContain("x-request-id");
    const untrusted = await app.request("/api/v1/me", { headers: { origin: "https://evil.example" } });
    expect(untrusted.headers.get("access-control-allow-origin")).toBeNull();
    expect(untrusted.headers.get("vary")).toContain("Origin");
    const auth = await app.request("/api/auth/get-session", { headers: { origin: TEST_ORIGIN } });
    expect(auth.headers.get("access-control-allow-origin")).toBe(TEST_ORIGIN);
  });

  it("adds the same headers when served by Node, where they go on the ServerResponse", async () => {
    const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 });
    await new Promise((resolve) => server.once("listening", resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const trusted = await fetch(`${base}/api/v1/me`, {
        headers: { origin: TEST_ORIGIN, "x-request-id": "socket-1" },
      });
      expect(trusted.status).toBe(401);
      expect(trusted.headers.get("x-request-id")).toBe("socket-1");
      expect(trusted.headers.get("access-control-allow-origin")).toBe(TEST_ORIGIN);
      expect(trusted.headers.get("access-control-allow-credentials")).toBe("true");
      expect(trusted.headers.get("vary")).toContain("Origin");
      expect(trusted.headers.get("content-type")).toContain("application/problem+json");
      const untrusted = await fetch(`${base}/api/auth/get-session`, { headers: { origin: "https://evil.example" } });
      expect(untrusted.headers.get("access-control-allow-origin")).toBeNull();
      expect(untrusted.headers.get("vary")).toContain("Origin");
      expect(untrusted.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
      const health = await fetch(`${base}/health`);
      expect(health.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
      expect(health.headers.get("access-control-allow-origin")).toBeNull();
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
