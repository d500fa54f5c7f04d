import { DrizzleQueryError } from "drizzle-orm/errors";
import { describe, expect, it } from "vitest";
import { childLogger, createLogger, prettyOutput, redactFields, type Logger, type LogLevel } from "./logger.js";

function capture(level: LogLevel = "debug", pretty = false) {
  const out: string[] = [];
  const logger = createLogger({ level, pretty, destination: { write: (line) => void out.push(line) } });
  const lines = () => out.join("").split("\n").filter(Boolean);
  return { logger, out, lines, records: () => lines().map((line) => JSON.parse(line) as Record<string, unknown>) };
}

const SECRETS = [
  "hunter2-password",
  "tok_live_123",
  "sid=abc-cookie",
  "Bearer eyJsecret",
  "session=set-cookie-value",
  "whsec_deep",
  "pk_private",
];

describe("createLogger: JSON lines", () => {
  it("writes one parseable JSON object per line with level, ISO time, message and the fields", () => {
    const { logger, out, records } = capture();
    logger.info("request", { status: 200, durationMs: 1.5 });
    logger.warn("100%s literal, no interpolation");
    logger.error('line\nbreak "quoted"', { nested: { list: [1, "two", null] } });
    expect(out.every((line) => line.endsWith("\n") && line.indexOf("\n") === line.length - 1)).toBe(true);
    const [request, literal, quoted] = records();
    expect(request).toEqual({
      level: "info",
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      message: "request",
      status: 200,
      durationMs: 1.5,
    });
    expect(literal).toMatchObject({ level: "warn", message: "100%s literal, no interpolation" });
    expect(quoted).toMatchObject({
      level: "error",
      message: 'line\nbreak "quoted"',
      nested: { list: [1, "two", null] },
    });
  });

  it("drops lines below the level", () => {
    const { logger, records } = capture("warn");
    logger.debug("d");
    logger.info("i");
    logger.warn("w");
    logger.error("e");
    expect(records().map((r) => r.message)).toEqual(["w", "e"]);
  });
});

describe("createLogger: redaction", () => {
  it("replaces passwords, tokens, cookies, authorization headers and secrets at any depth", () => {
    const { logger, out, records } = capture();
    const fields = {
      password: "hunter2-password",
      user: { id: "u1", credentials: { accessToken: "tok_live_123" } },
      request: {
        headers: { "content-type": "application/json", cookie: "sid=abc-cookie", authorization: "Bearer eyJsecret" },
      },
      response: [{ headers: { "set-cookie": ["session=set-cookie-value"] } }],
      deep: { a: { b: { c: { d: [{ webhookSecret: "whsec_deep", privateKey: "pk_private" }] } } } },
    };
    const snapshot = structuredClone(fields);
    logger.info("sign-in", fields);
    for (const secret of SECRETS) expect(out.join("")).not.toContain(secret);
    expect(records()[0]).toEqual({
      level: "info",
      time: expect.any(String),
      message: "sign-in",
      password: "[REDACTED]",
      user: { id: "u1", credentials: "[REDACTED]" },
      request: { headers: { "content-type": "application/json", cookie: "[REDACTED]", authorization: "[REDACTED]" } },
      response: [{ headers: { "set-cookie": "[REDACTED]" } }],
      deep: { a: { b: { c: { d: [{ webhookSecret: "[REDACTED]", privateKey: "[REDACTED]" }] } } } },
    });
    // The caller's objects are left as they were.
    expect(fields).toEqual(snapshot);
  });

  it("redacts a child logger's bindings too, and cuts the password out of URLs", () => {
    const { logger, out, records } = capture();
    const child = childLogger(logger, { requestId: "r1", auth: { token: "tok_live_123" } });
    child.info("connecting to postgres://sv_app:hunter2-password@db/sv_sdk", {
      url: "postgres://sv_app:hunter2-password@db:5432/sv_sdk",
      target: new URL("https://u:whsec_deep@example.com/x"),
    });
    for (const secret of SECRETS) expect(out.join("")).not.toContain(secret);
    expect(records()[0]).toMatchObject({
      message: "connecting to postgres://sv_app:[REDACTED]@db/sv_sdk",
      requestId: "r1",
      auth: { token: "[REDACTED]" },
      url: "postgres://sv_app:[REDACTED]@db:5432/sv_sdk",
      target: "https://u:[REDACTED]@example.com/x",
    });
  });

  it("survives cycles and returns untouched fields as they are (the request line costs no copy)", () => {
    const flat = { requestId: "r1", method: "GET", path: "/health", status: 200 };
    expect(redactFields(flat)).toBe(flat);
    const cyclic: Record<string, unknown> = { name: "loop", password: "hunter2-password" };
    cyclic.self = cyclic;
    expect(redactFields({ cyclic })).toEqual({ cyclic: { name: "loop", password: "[REDACTED]", self: "[Circular]" } });
  });
});

describe("createLogger: errors", () => {
  it("logs an error's cause chain, with a failed query's SQL but never its bound parameters", () => {
    const { logger, out, records } = capture();
    const driver = Object.assign(new Error('duplicate key value violates unique constraint "users_email_key"'), {
      name: "PostgresError",
      code: "23505",
    });
    const failed = new DrizzleQueryError(
      "insert into auth.users (email, password) values ($1, $2)",
      ["a@b.c", "hunter2-password"],
      driver,
    );
    logger.error("unhandled error", { requestId: "r500", error: new Error("sign-up failed", { cause: failed }) });
    expect(out.join("")).not.toContain("hunter2-password");
    expect(out.join("")).not.toContain("a@b.c");
    const { error } = records()[0] as { error: Record<string, unknown>[] };
    expect(error.map((e) => e.message ?? e.query)).toEqual([
      "sign-up failed",
      "insert into auth.users (email, password) values ($1, $2)",
      'duplicate key value violates unique constraint "users_email_key"',
    ]);
    expect(error[2]).toMatchObject({ name: "PostgresError", code: "23505" });
    expect(error[0]!.stack).toContain("logger.test.ts");
  });
});

describe("createLogger: pretty", () => {
  it("prints a human line (level word, message, fields), redacted, not JSON", () => {
    const { logger, lines } = capture("info", true);
    logger.info("request", { status: 200, path: "/health", authorization: "Bearer eyJsecret" });
    const text = lines().join("\n");
    expect(text).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: request$/m);
    expect(text).toContain("status: 200");
    expect(text).toContain('path: "/health"');
    expect(text).not.toContain("eyJsecret");
    expect(() => JSON.parse(lines()[0]!)).toThrow();
  });

  it("is chosen by LOG_FORMAT, or by a terminal in development", () => {
    expect(prettyOutput({ format: "json", environment: "development", isTTY: true })).toBe(false);
    expect(prettyOutput({ format: "pretty", environment: "production", isTTY: false })).toBe(true);
    expect(prettyOutput({ environment: "development", isTTY: true })).toBe(true);
    expect(prettyOutput({ environment: "development", isTTY: false })).toBe(false);
    expect(prettyOutput({ environment: "production", isTTY: true })).toBe(false);
    expect(prettyOutput({ environment: "test", isTTY: true })).toBe(false);
  });
});

describe("childLogger", () => {
  it("binds fields once for every line of a pino-backed logger", () => {
    const { logger, records } = capture();
    const request = childLogger(logger, { requestId: "r1", method: "GET", path: "/health" });
    request.info("request", { status: 200 });
    request.warn("slow", { durationMs: 900 });
    expect(records()).toEqual([
      expect.objectContaining({ requestId: "r1", method: "GET", path: "/health", message: "request", status: 200 }),
      expect.objectContaining({ requestId: "r1", method: "GET", path: "/health", message: "slow", durationMs: 900 }),
    ]);
  });

  it("adds the bindings to each call of a hand-written Logger", () => {
    const seen: unknown[] = [];
    const plain: Logger = {
      debug() {},
      info: (message, fields) => void seen.push({ message, ...fields }),
      warn() {},
      error() {},
    };
    childLogger(childLogger(plain, { requestId: "r1" }), { path: "/x" }).info("request", { status: 204 });
    expect(seen).toEqual([{ message: "request", requestId: "r1", path: "/x", status: 204 }]);
  });
});
