/**
 * `npm start` as a real process: it starts on a database, answers /ready, finishes a request in
 * flight when told to stop, and exits 0; in production it refuses to start without a real secret or
 * a real email transport. Under signals as a terminal and a process manager send them (SIGINT to the
 * whole process group, SIGTERM to npm), the whole tree stops — embedded PostgreSQL included, after
 * the requests in flight — within SHUTDOWN_TIMEOUT_MS, also when a request hangs and the database
 * died; and what a killed run leaves does not block the next start.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { freePort, stopPostmaster } from "../src/db/embedded.js";
import { createIsolatedDatabase, type IsolatedDatabase } from "../src/testing/database.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs src/server.ts with only the given environment (plus PATH), never the test runner's. */
function startServer(env: Record<string, string>): Started & { stdout: () => string; stderr: () => string } {
  const child = spawn(process.execPath, ["--import", "tsx", "src/server.ts"], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => ((output += chunk.toString()), (stdout += chunk.toString())));
  child.stderr!.on("data", (chunk: Buffer) => ((output += chunk.toString()), (stderr += chunk.toString())));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, exited, stdout: () => stdout, stderr: () => stderr };
}

/**
 * `npm start`, as a terminal runs it: in a process group of its own (so that the test can send
 * SIGINT to the group as Ctrl-C does), with only the given environment.
 */
function npmStart(env: Record<string, string>): Started {
  const child = spawn("npm", ["start"], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, exited };
}

/** Pids of the processes whose /proc entry matches. */
function processes(matches: (pid: number) => boolean): number[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => {
      try {
        return matches(pid);
      } catch {
        return false; // exited meanwhile
      }
    });
}
/** Every process in process group `pgid` (field 5 of /proc/<pid>/stat). */
const inGroup = (pgid: number) =>
  processes((pid) => Number(readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[2]) === pgid);
/** Every PostgreSQL process of a cluster: each works in the data directory. */
const ofCluster = (clusterDir: string) => processes((pid) => readlinkSync(`/proc/${pid}/cwd`) === clusterDir);
/** Zombies aside: a process that has exited is gone. */
const living = (pids: number[]) => pids.filter((pid) => !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8")));

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
      DATABASE_APP_URL: database.appUrl,
      PORT: String(port),
      HOST: "127.0.0.1",
      LOG_LEVEL: "info",
    });
    try {
      await waitForReady(url, started, 30_000);
      // The banner is for people, on stderr; stdout carries only the JSON log lines.
      expect(started.stderr()).toContain(`  API      http://localhost:${port}/api/v1`);
      const lines = started.stdout().split("\n").filter(Boolean);
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();

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
  ])(
    "refuses to start in production with a %s BETTER_AUTH_SECRET, naming it",
    async (_, secret) => {
      const started = startServer({
        NODE_ENV: "production",
        DATABASE_URL: database.url,
        PORT: String(await freePort()),
        LOG_LEVEL: "warn",
        ...(secret ? { BETTER_AUTH_SECRET: secret } : {}),
      });
      // Loading the app under tsx before the configuration is read takes seconds, more on a busy machine.
      const { code } = await exitWithin(started, 45_000);
      expect(code).not.toBe(0);
      expect(started.output()).toContain(
        "BETTER_AUTH_SECRET must be set to at least 32 random characters when NODE_ENV=production",
      );
      // The sentence, not a stack trace.
      expect(started.output()).not.toMatch(/\n\s+at /);
    },
    60_000,
  );

  it("refuses to start in production without a real email transport, naming both ways out", async () => {
    const started = startServer({
      NODE_ENV: "production",
      DATABASE_URL: database.url,
      DATABASE_APP_URL: "",
      BETTER_AUTH_SECRET: "s".repeat(32),
      RESEND_API_KEY: "",
      PORT: String(await freePort()),
    });
    const { code } = await exitWithin(started, 45_000);
    expect(code).toBe(1);
    expect(started.output()).toContain("sv-sdk cannot start: NODE_ENV=production needs a real email transport");
    expect(started.output()).toContain("EMAIL_TRANSPORT=log");
    expect(started.output()).toContain("RESEND_API_KEY");
  }, 60_000);
});

describe("npm start under signals, with the embedded PostgreSQL", () => {
  const TIMEOUT_MS = 5000;
  let dataDir: string;
  let clusterDir: string;
  const running = new Set<Started>();
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "sv-sdk-server-"));
    // As root the cluster belongs to a `postgres` user, who must reach it.
    await chmod(dataDir, 0o755);
    clusterDir = join(dataDir, "postgres", "cluster");
  });
  // Whatever a test leaves, even when it fails: the process group, then the cluster.
  afterEach(async () => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    for (const started of running) {
      try {
        process.kill(-started.child.pid!, "SIGKILL");
      } catch {
        // gone
      }
    }
    running.clear();
    await Promise.all(ofCluster(clusterDir).map((pid) => stopPostmaster(pid, 2000)));
  });
  afterAll(async () => {
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  async function start(timeoutMs = TIMEOUT_MS) {
    const port = await freePort();
    const started = npmStart({
      NODE_ENV: "test",
      DATA_DIR: dataDir,
      PORT: String(port),
      HOST: "127.0.0.1",
      LOG_LEVEL: "warn",
      SHUTDOWN_TIMEOUT_MS: String(timeoutMs),
      // As compose and CI pass "not set".
      DATABASE_URL: "",
    });
    running.add(started);
    const url = `http://127.0.0.1:${port}`;
    // The first start runs initdb.
    await waitForReady(url, started, 120_000);
    expect(living(ofCluster(clusterDir)).length).toBeGreaterThan(0);
    return { started, port, url, pgid: started.child.pid! };
  }

  /** Sends a sign-up's headers and half its body: the request is in flight until `finish()`. */
  async function signUpInFlight(port: number) {
    const body = JSON.stringify({
      email: `inflight-${Date.now()}@example.test`,
      password: "correct horse battery",
      name: "In Flight",
    });
    const socket = connect(port, "127.0.0.1");
    sockets.add(socket);
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    let response = "";
    let error: string | undefined;
    socket.on("data", (chunk: Buffer) => (response += chunk.toString()));
    socket.on("error", (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    const half = Math.floor(body.length / 2);
    socket.write(
      `POST /api/auth/sign-up/email HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, half)}`,
    );
    return {
      async finish(): Promise<{ response: string; error?: string }> {
        socket.write(body.slice(half));
        await closed;
        return { response, error };
      },
      received: () => response,
    };
  }

  it("SIGTERM to npm stops the server and its PostgreSQL within SHUTDOWN_TIMEOUT_MS", async () => {
    const { started, url, pgid } = await start();
    const sent = Date.now();
    process.kill(pgid, "SIGTERM"); // npm's own pid, as `kill`, systemd or a container runtime send it
    const exit = await exitWithin(started, TIMEOUT_MS + 5000);
    // npm exits with the server's code (0 after a clean shutdown).
    expect(exit.code, started.output()).toBe(0);
    // npm waits for its child; the server exits only after the cluster is gone.
    expect(Date.now() - sent).toBeLessThan(TIMEOUT_MS + 2500);
    expect(living(inGroup(pgid))).toEqual([]);
    expect(living(ofCluster(clusterDir))).toEqual([]);
    await expect(fetch(`${url}/health`)).rejects.toThrow();
  }, 180_000);

  it("Ctrl-C (SIGINT to the whole process group) lets the request in flight finish against a live database", async () => {
    // A sign-up hashes its password (about a second here, more on a busy machine): room to drain.
    const timeoutMs = 20_000;
    const { started, port, pgid } = await start(timeoutMs);
    const inFlight = await signUpInFlight(port);
    // The server has taken the request and is reading its body.
    await new Promise((r) => setTimeout(r, 300));
    process.kill(-pgid, "SIGINT"); // what the terminal sends on Ctrl-C: npm, node and anything else in the group
    await new Promise((r) => setTimeout(r, 500));
    const { response, error } = await inFlight.finish();
    expect(error, started.output()).toBeUndefined();
    expect(response, started.output()).toMatch(/^HTTP\/1\.1 200 /);
    expect(response).toMatch(/Connection: close/i);

    await exitWithin(started, timeoutMs + 5000);
    expect(living(inGroup(pgid))).toEqual([]);
    expect(living(ofCluster(clusterDir))).toEqual([]);
  }, 180_000);

  it("with a request hanging and the database killed, SIGTERM still ends it all in time, and the next start is not blocked", async () => {
    const first = await start();
    // A request that never ends: its body never comes.
    await signUpInFlight(first.port);
    await new Promise((r) => setTimeout(r, 300));
    // The database dies (as under the OOM killer): its postmaster.pid stays behind.
    for (const pid of ofCluster(clusterDir)) process.kill(pid, "SIGKILL");
    await new Promise((r) => setTimeout(r, 300));

    const sent = Date.now();
    process.kill(first.pgid, "SIGTERM");
    await exitWithin(first.started, TIMEOUT_MS + 5000);
    expect(Date.now() - sent).toBeLessThan(TIMEOUT_MS + 2500);
    expect(living(inGroup(first.pgid))).toEqual([]);
    expect(living(ofCluster(clusterDir))).toEqual([]);

    const second = await start();
    process.kill(second.pgid, "SIGTERM");
    expect((await exitWithin(second.started, TIMEOUT_MS + 5000)).code, second.started.output()).toBe(0);
    expect(living(ofCluster(clusterDir))).toEqual([]);
  }, 240_000);
});
