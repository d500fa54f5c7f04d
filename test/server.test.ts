/**
 * `npm start` as a real process: it starts on a database, answers /ready, finishes a request in
 * flight when told to stop, and exits 0; in production it refuses to start without a real secret.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { freePort } from "../src/db/embedded.js";
import { createIsolatedDatabase, type IsolatedDatabase } from "../src/testing/database.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs src/server.ts with only the given environment (plus PATH), never the test runner's. */
function startServer(env: Record<string, string>): Started {
  const child = spawn(process.execPath, ["--import", "tsx", "src/server.ts"], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, exited };
}

/** Resolves with the exit, or rejects after `ms` (the process is then killed). */
async function exitWithin(started: Started, ms: number) {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      started.child.kill("SIGKILL");
      reject(new Error(`the process did not exit within ${ms / 1000} s; output:\n${started.output()}`));
    }, ms);
  });
  try {
    return await Promise.race([started.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitForReady(url: string, started: Started, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  let exited = false;
  void started.exited.then(() => (exited = true));
  while (Date.now() < deadline) {
    if (exited) throw new Error(`the server exited before it was ready:\n${started.output()}`);
    try {
      const res = await fetch(`${url}/ready`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`/ready did not answer 200 within ${ms / 1000} s:\n${started.output()}`);
}

/**
 * Opens a connection and sends only the first part of a request, so that the request is in flight
 * (started, not finished) until `finish()` sends the rest; resolves with the raw response text.
 */
async function partialRequest(port: number, path: string) {
  const socket = connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  let response = "";
  socket.on("data", (chunk: Buffer) => (response += chunk.toString()));
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`);
  return {
    async finish(): Promise<string> {
      socket.write("Accept: application/json\r\n\r\n");
      await closed;
      return response;
    },
  };
}

describe("the server process", () => {
  let database: IsolatedDatabase;
  beforeAll(async () => {
    database = await createIsolatedDatabase(inject("svTestDatabase"));
  });
  afterAll(async () => {
    await database?.drop();
  });

  it("becomes ready, finishes the request in flight on SIGTERM, and exits 0", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const started = startServer({
      NODE_ENV: "test",
      DATABASE_URL: database.url,
      PORT: String(port),
      HOST: "127.0.0.1",
      LOG_LEVEL: "warn",
    });
    try {
      await waitForReady(url, started, 30_000);

      const inFlight = await partialRequest(port, "/health");
      // Let the server take the connection and start parsing the request before the signal.
      await new Promise((r) => setTimeout(r, 300));
      started.child.kill("SIGTERM");
      await new Promise((r) => setTimeout(r, 300));
      const response = await inFlight.finish();
      expect(response).toMatch(/^HTTP\/1\.1 200 /);
      expect(response).toContain('{"status":"ok"}');

      expect(await exitWithin(started, 15_000)).toEqual({ code: 0, signal: null });
      // Once stopped it accepts nothing.
      await expect(fetch(`${url}/health`)).rejects.toThrow();
    } finally {
      started.child.kill("SIGKILL");
    }
  });

  it.each([
    ["missing", undefined],
    ["short", "too-short-to-sign-sessions"],
  ])("refuses to start in production with a %s BETTER_AUTH_SECRET, naming it", async (_, secret) => {
    const started = startServer({
      NODE_ENV: "production",
      DATABASE_URL: database.url,
      PORT: String(await freePort()),
      LOG_LEVEL: "warn",
      ...(secret ? { BETTER_AUTH_SECRET: secret } : {}),
    });
    const { code } = await exitWithin(started, 15_000);
    expect(code).not.toBe(0);
    expect(started.output()).toContain(
      "BETTER_AUTH_SECRET must be set to at least 32 random characters when NODE_ENV=production",
    );
    // The sentence, not a stack trace.
    expect(started.output()).not.toMatch(/\n\s+at /);
  });
});
