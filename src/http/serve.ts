/**
 * A Node HTTP server for a fetch handler (the API, a test, a benchmark) with limits a public server
 * needs and a close() that drains.
 *
 * Node's defaults let a client hold a connection for a long time: 60 s to send its headers, 300 s
 * for the whole request, checked every 30 s. And `server.close()` alone waits for keep-alive
 * connections: a request in flight when it is called is answered with `Connection: keep-alive`,
 * and its connection then stays open for the keep-alive timeout — or for ever, while the client
 * keeps sending requests on it.
 */
import type { Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createAdaptorServer, type HttpBindings } from "@hono/node-server";

export interface StartServerOptions {
  /** 0 picks a free port (see `port` of the result). */
  port: number;
  /** Default 127.0.0.1; `0.0.0.0` in a container. */
  hostname?: string;
  /** A client must have sent all its headers within this time (408 and closed otherwise). Default 10 s. */
  headersTimeoutMs?: number;
  /** …and the whole request, body included, within this one. Answering may take longer. Default 30 s. */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this. Default 5 s; behind a load balancer, above its idle timeout. */
  keepAliveTimeoutMs?: number;
  /** Largest request head (request line and headers) in bytes: 431 and closed above it. Default 16 KiB. */
  maxHeaderSize?: number;
}

export interface CloseOptions {
  /** How long requests in flight may take to finish before their connections are closed. Default 10 s. */
  graceMs?: number;
}

export interface RunningServer {
  server: Server;
  port: number;
  /** `http://<hostname>:<port>` */
  url: string;
  /**
   * Stops accepting connections, closes idle ones, lets requests in flight finish (their
   * connections then close instead of being kept alive) and, after `graceMs`, closes whatever is
   * left. Resolves when every connection is gone. Idempotent.
   */
  close(options?: CloseOptions): Promise<void>;
}

type Fetch = (request: Request, env: HttpBindings) => Response | Promise<Response>;

/**
 * @example
 * const running = await startServer(createApp(sdk).fetch, { port: 3000 });
 * process.once("SIGTERM", () => void running.close({ graceMs: 5000 }));
 */
export async function startServer(fetch: Fetch, options: StartServerOptions): Promise<RunningServer> {
  const headersTimeout = options.headersTimeoutMs ?? 10_000;
  const requestTimeout = Math.max(options.requestTimeoutMs ?? 30_000, headersTimeout);
  const server = createAdaptorServer({
    fetch: fetch as (request: Request, env: unknown) => Response | Promise<Response>,
    serverOptions: {
      headersTimeout,
      requestTimeout,
      maxHeaderSize: options.maxHeaderSize ?? 16 * 1024,
      // How often Node checks the two timeouts above (its default, 30 s, would make them that coarse).
      connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(headersTimeout / 4))),
    },
  }) as Server;
  server.keepAliveTimeout = options.keepAliveTimeoutMs ?? 5_000;
  // A request Node's parser refuses (bytes that are not HTTP, a head too large, too slow) never
  // reaches the app: it still gets a problem document, then the connection closes.
  server.on("clientError", (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || error.code === "ECONNRESET") return socket.destroy();
    const [status, title, code] =
      error.code === "HPE_HEADER_OVERFLOW"
        ? [431, "Request Header Fields Too Large", "HEADERS_TOO_LARGE"]
        : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
          ? [408, "Request Timeout", "REQUEST_TIMEOUT"]
          : [400, "Bad Request", "MALFORMED_REQUEST"];
    const body = JSON.stringify({
      type: `urn:sv-sdk:problem:${code.toLowerCase().replaceAll("_", "-")}`,
      title,
      status,
      code,
      detail: status === 400 ? "The request is not valid HTTP (its request line or headers could not be read)" : title,
    });
    socket.end(
      `HTTP/1.1 ${status} ${title}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });

  let closing: Promise<void> | undefined;
  const inFlight = new Set<ServerResponse>();
  // Before the adapter's listener: a response it writes synchronously must already know.
  server.prependListener("request", (_req, res: ServerResponse) => {
    if (closing) res.shouldKeepAlive = false;
    inFlight.add(res);
    res.once("close", () => {
      inFlight.delete(res);
      // A response that had started before close() may have kept its connection alive.
      if (closing) setImmediate(() => server.closeIdleConnections());
    });
  });

  const hostname = options.hostname ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    server,
    port,
    url: `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`,
    close({ graceMs = 10_000 } = {}) {
      closing ??= new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        for (const res of inFlight) if (!res.headersSent) res.shouldKeepAlive = false;
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
