import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";

const secret = "s".repeat(32);
const databaseUrl = "postgres://owner:pw@db:5432/sv_sdk";

describe("loadConfig", () => {
  it("has development defaults with nothing set", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      environment: "development",
      port: 3000,
      host: "127.0.0.1",
      publicUrl: "http://localhost:3000",
      dataDir: ".data",
      trustedOrigins: ["http://localhost:3000"],
      bodyLimitBytes: 1024 * 1024,
      logLevel: "info",
      email: { from: "sv-sdk <no-reply@localhost>", dispatcher: true },
    });
    expect(config.databaseUrl).toBeUndefined();
    expect(config.topology).toBeUndefined();
  });

  it("reads PORT, PUBLIC_URL and TRUSTED_ORIGINS", () => {
    const config = loadConfig({
      PORT: "8080",
      PUBLIC_URL: "https://api.example.test",
      TRUSTED_ORIGINS: "https://app.example.test, https://admin.example.test,",
    });
    expect(config.port).toBe(8080);
    expect(config.trustedOrigins).toEqual([
      "https://api.example.test",
      "https://app.example.test",
      "https://admin.example.test",
    ]);
  });

  it("explains a bad PORT in a sentence", () => {
    expect(() => loadConfig({ PORT: "eighty" })).toThrow(/^Invalid configuration — PORT: /);
    expect(() => loadConfig({ PORT: "70000" })).toThrow(/^Invalid configuration — PORT: /);
  });

  it("refuses a DATABASE_URL that is not a PostgreSQL URL", () => {
    expect(() => loadConfig({ DATABASE_URL: "mysql://x" })).toThrow(
      "Invalid configuration — DATABASE_URL: must be a postgres:// URL",
    );
  });

  it("in production, requires BETTER_AUTH_SECRET of at least 32 characters", () => {
    const message = "BETTER_AUTH_SECRET must be set to at least 32 random characters when NODE_ENV=production";
    expect(() => loadConfig({ NODE_ENV: "production", DATABASE_URL: databaseUrl })).toThrow(message);
    expect(() =>
      loadConfig({ NODE_ENV: "production", DATABASE_URL: databaseUrl, BETTER_AUTH_SECRET: "short" }),
    ).toThrow(message);
    expect(loadConfig({ NODE_ENV: "production", DATABASE_URL: databaseUrl, BETTER_AUTH_SECRET: secret }).authSecret).toBe(
      secret,
    );
  });

  it("outside production, runs without a secret", () => {
    expect(loadConfig({ NODE_ENV: "test" }).authSecret).toBeUndefined();
  });

  it("in production, requires a database (the embedded one is for development)", () => {
    expect(() => loadConfig({ NODE_ENV: "production", BETTER_AUTH_SECRET: secret })).toThrow(
      /^DATABASE_URL \(or DATABASE_TOPOLOGY\) is required when NODE_ENV=production/,
    );
  });

  it("parses DATABASE_TOPOLOGY and reports an invalid one", () => {
    const topology = { databases: { main: { url: databaseUrl } } };
    expect(loadConfig({ DATABASE_TOPOLOGY: JSON.stringify(topology) }).topology?.databases.main?.url).toBe(databaseUrl);
    expect(() => loadConfig({ DATABASE_TOPOLOGY: "{not json" })).toThrow(/^DATABASE_TOPOLOGY is not a valid topology: /);
    expect(() => loadConfig({ DATABASE_TOPOLOGY: JSON.stringify({ databases: {} }) })).toThrow(
      "DATABASE_TOPOLOGY is not a valid topology: Invalid database topology — databases.main: a database named 'main' is required",
    );
  });
});
