/**
 * startServer with real sockets on 127.0.0.1: slow and oversized requests are cut off, and close()
 * drains — in-flight requests finish, new connections are refused, keep-alive does not hold it open,
 * and after the grace period whatever is left is closed.
 */
import { connect, type Socket } from "node:net";
import { Hono } from "hono";
import { afterEach, describe, expect, it } from "vitest";
import { startServer, type RunningServer, type StartServerOptions } from "./serve.js";

const servers: RunningServer[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close({ graceMs: 0 })));
});

/** An app with a route that answers after `?ms=` milliseconds, and one that never answers. */
function app() {
  const hono = new Hono();
  hono.get("/slow", async (c) => {
    await new Promise((r) => setTimeout(r, Number(c.req.query("ms") ?? 0)));
    return c.json({ done: true });
  });
  hono.get("/hang", () => new Promise<Response>(() => {}));
  return hono;
}

async function start(options: Partial<StartServerOptions> = {}) {
  const server = await startServer(app().fetch, { port: 0, hostname: "127.0.0.1", ...options });
  servers.push(server);
  return server;
}

interface Raw {
  socket: Socket;
  /** Everything received until the server closed the connection, and when that was. */
  closed: Promise<{ text: string; afterMs: number; error?: string }>;
  received(): string;
}

async function open(port: number): Promise<Raw> {
  const socket = connect(port, "127.0.0.1");
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  const opened = Date.now();
  let text = "";
  let error: string | undefined;
  socket.on("data", (chunk: Buffer) => (text += chunk.toString()));
  socket.on("error", (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
  const closed = new Promise<{ text: string; afterMs: number; error?: string }>((resolve) =>
    socket.once("close", () => resolve({ text, afterMs: Date.now() - opened, error })),
  );
  return { socket, closed, received: () => text };
}

const waitFor = async (condition: () => boolean, ms: number) => {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe("startServer", () => {
  it("cuts off a client that sends its headers byte by byte (slowloris) after the headers timeout", async () => {
    const server = await start({ headersTimeoutMs: 1000 });
    const raw = await open(server.port);
    const request = `GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n${"X-Padding: slowly\r\n".repeat(200)}\r\n`;
    let sent = 0;
    const drip = setInterval(() => {
      if (!raw.socket.destroyed && sent < request.length) raw.socket.write(request[sent++]!);
    }, 20);
    try {
      const { text, afterMs } = await raw.closed;
      expect(afterMs).toBeLessThan(3000);
      expect(sent).toBeLessThan(request.length);
      expect(text).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      clearInterval(drip);
    }
  });

  it("refuses headers larger than maxHeaderSize with 431 and closes the connection", async () => {
    const server = await start({ maxHeaderSize: 8 * 1024 });
    const raw = await open(server.port);
    raw.socket.write(`GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${"a".repeat(16 * 1024)}\r\n\r\n`);
    const { text, afterMs } = await raw.closed;
    expect(text).toMatch(/^HTTP\/1\.1 431 /);
    expect(afterMs).toBeLessThan(2000);

    // Headers within the limit still work.
    const res = await fetch(`${server.url}/slow`, { headers: { "x-fine": "a".repeat(4 * 1024) } });
    expect(res.status).toBe(200);
  });

  it("lets a handler take longer than the request timeout (it bounds receiving the request, not answering it)", async () => {
    const server = await start({ headersTimeoutMs: 500, requestTimeoutMs: 500 });
    const res = await fetch(`${server.url}/slow?ms=1200`);
    expect(res.status).toBe(200);
  });

  it("close() lets the in-flight request finish on its keep-alive connection, then closes it; new connections are refused", async () => {
    const server = await start({ keepAliveTimeoutMs: 30_000 });
    const idle = await open(server.port);
    idle.socket.write(`GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    await waitFor(() => idle.received().includes('{"done":true}'), 2000);
    expect(idle.received()).toMatch(/Connection: keep-alive/i);

    const busy = await open(server.port);
    busy.socket.write(`GET /slow?ms=700 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    await new Promise((r) => setTimeout(r, 100));

    const started = Date.now();
    const closed = server.close({ graceMs: 5000 });
    // The idle keep-alive connection goes at once; the listening socket too.
    expect((await idle.closed).afterMs).toBeGreaterThan(0);
    await expect(fetch(`${server.url}/slow`)).rejects.toThrow();

    const { text } = await busy.closed;
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(text).toMatch(/Connection: close/i);
    expect(text).toContain('{"done":true}');
    await closed;
    // Well before the 30 s keep-alive timeout and the 5 s grace.
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("close() closes the connections still busy when the grace period ends", async () => {
    const server = await start();
    const hung = await open(server.port);
    hung.socket.write(`GET /hang HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    // A request whose headers never end is not idle either.
    const partial = await open(server.port);
    partial.socket.write(`GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n`);
    await new Promise((r) => setTimeout(r, 100));

    const started = Date.now();
    await server.close({ graceMs: 300 });
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(1500);
    expect((await hung.closed).text).toBe("");
    await partial.closed;
  });
});
