import { describe, expect, it } from "vitest";
import { CONFIG_VARIABLES, loadConfig } from "./config.js";

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

  it("reads COOKIE_SAME_SITE (lax unless set) and refuses a value that is not one", () => {
    expect(loadConfig({}).cookieSameSite).toBe("lax");
    expect(loadConfig({ COOKIE_SAME_SITE: "none" }).cookieSameSite).toBe("none");
    expect(() => loadConfig({ COOKIE_SAME_SITE: "sometimes" })).toThrow(/COOKIE_SAME_SITE/);
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
    expect(
      loadConfig({
        NODE_ENV: "production",
        DATABASE_URL: databaseUrl,
        BETTER_AUTH_SECRET: secret,
        EMAIL_TRANSPORT: "log",
      }).authSecret,
    ).toBe(secret);
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
    expect(() => loadConfig({ DATABASE_TOPOLOGY: "{not json" })).toThrow(
      /^DATABASE_TOPOLOGY is not a valid topology: /,
    );
    expect(() => loadConfig({ DATABASE_TOPOLOGY: JSON.stringify({ databases: {} }) })).toThrow(
      "DATABASE_TOPOLOGY is not a valid topology: Invalid database topology — databases.main: a database named 'main' is required",
    );
  });

  it("treats an empty (or blank) variable as unset, for every variable", () => {
    expect(CONFIG_VARIABLES).toContain("DATABASE_URL");
    for (const blank of ["", "  "]) {
      const env = Object.fromEntries(CONFIG_VARIABLES.map((name) => [name, blank]));
      expect(loadConfig(env)).toEqual(loadConfig({}));
    }
    // As compose and CI write it: `DATABASE_URL=` beside a real value of another variable.
    expect(loadConfig({ DATABASE_URL: "", PORT: "8080" }).databaseUrl).toBeUndefined();
    expect(() =>
      loadConfig({ NODE_ENV: "production", BETTER_AUTH_SECRET: secret, DATABASE_URL: "", EMAIL_TRANSPORT: "log" }),
    ).toThrow(/^DATABASE_URL \(or DATABASE_TOPOLOGY\) is required when NODE_ENV=production/);
  });

  it("waits SHUTDOWN_TIMEOUT_MS (default 10 s) for a graceful shutdown", () => {
    expect(loadConfig({}).shutdownTimeoutMs).toBe(10_000);
    expect(loadConfig({ SHUTDOWN_TIMEOUT_MS: "3000" }).shutdownTimeoutMs).toBe(3000);
    expect(() => loadConfig({ SHUTDOWN_TIMEOUT_MS: "10" })).toThrow(/^Invalid configuration — SHUTDOWN_TIMEOUT_MS: /);
  });

  it("reads TRUST_PROXY as a hop count or the proxies' addresses, and explains a bad one", () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: "0" }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: "1" }).trustProxy).toBe(1);
    expect(loadConfig({ TRUST_PROXY: "10.0.0.0/8, 192.168.1.1" }).trustProxy).toEqual(["10.0.0.0/8", "192.168.1.1"]);
    expect(() => loadConfig({ TRUST_PROXY: "yes" })).toThrow(/TRUST_PROXY: 'yes' is not an IP address or CIDR block/);
  });
});

describe("EMAIL_TRANSPORT", () => {
  const production = { NODE_ENV: "production", DATABASE_URL: databaseUrl, BETTER_AUTH_SECRET: secret };
  const unsubscribe = "u".repeat(32);

  it("defaults to resend with RESEND_API_KEY, else to the development recorder outside production", () => {
    expect(loadConfig({}).email.transport).toBe("development");
    expect(loadConfig({ RESEND_API_KEY: "re_123" }).email.transport).toBe("resend");
    expect(
      loadConfig({ ...production, RESEND_API_KEY: "re_123", EMAIL_UNSUBSCRIBE_SECRET: unsubscribe }).email.transport,
    ).toBe("resend");
  });

  it("in production without a Resend key, refuses to start with a sentence naming both ways out", () => {
    expect(() => loadConfig(production)).toThrow(
      "NODE_ENV=production needs a real email transport: set RESEND_API_KEY (and EMAIL_UNSUBSCRIBE_SECRET) to send through Resend, " +
        "or EMAIL_TRANSPORT=log to deliver nothing and only log each message (email verification is then not required)",
    );
    expect(() => loadConfig({ ...production, RESEND_API_KEY: "" })).toThrow(/EMAIL_TRANSPORT=log/);
  });

  it("log is allowed everywhere, production included", () => {
    expect(loadConfig({ ...production, EMAIL_TRANSPORT: "log" }).email.transport).toBe("log");
    expect(loadConfig({ EMAIL_TRANSPORT: "log", RESEND_API_KEY: "re_123" }).email.transport).toBe("log");
  });

  it("refuses the development recorder in production and resend without a key", () => {
    expect(() => loadConfig({ ...production, EMAIL_TRANSPORT: "development" })).toThrow(
      "EMAIL_TRANSPORT=development records mail in the database and is refused when NODE_ENV=production: use resend (with RESEND_API_KEY) or log",
    );
    expect(() => loadConfig({ EMAIL_TRANSPORT: "resend" })).toThrow("EMAIL_TRANSPORT=resend needs RESEND_API_KEY");
    expect(() => loadConfig({ EMAIL_TRANSPORT: "smtp" })).toThrow(/^Invalid configuration — EMAIL_TRANSPORT: /);
  });
});
