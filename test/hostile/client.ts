/**
 * One keep-alive HTTP/1.1 connection to the server under test, sending exact bytes (a Buffer body,
 * a path with raw latin1 bytes) and watching the socket: a socket that errors, or that the server
 * closes without having said `Connection: close`, is a dropped socket; a response whose
 * `X-Request-Id` is not the request's own means the connection lost track of where requests begin.
 */
import { Agent, request, type IncomingHttpHeaders } from "node:http";
import type { Socket } from "node:net";

/** A connection closed by the server after this long idle is its keep-alive timeout, not a drop. */
const IDLE_CLOSE_MS = 4_000;

export interface RawRequest {
  method: string;
  /** Sent as is (Node writes the request line as latin1: a char 0x80–0xff is one raw byte). */
  path: string;
  /** Header values as Node writes them (latin1); an array sends the header once per value. */
  headers: Record<string, string | string[]>;
  body?: Buffer;
  /** Send the body with chunked transfer encoding instead of Content-Length. */
  chunked?: boolean;
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Which connection answered (1 = the first one the client opened). */
  connection: number;
  ms: number;
}

/** Something wrong with the connection itself, attributed to a request. */
export interface ConnectionIncident {
  kind: "socket-error" | "request-error" | "unannounced-close" | "timeout" | "request-id-mismatch";
  detail: string;
  /** The request during (or after) which it happened. */
  requestId: string;
}

export class KeepAliveClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1, keepAliveMsecs: 1000 });
  private readonly ids = new WeakMap<Socket, number>();
  private readonly announcedClose = new WeakSet<Socket>();
  private readonly destroyedByUs = new WeakSet<Socket>();
  private readonly lastRequestOn = new WeakMap<Socket, string>();
  /** When the socket's last response ended; undefined while a request is in flight on it. */
  private readonly idleSince = new WeakMap<Socket, number>();
  private opened = 0;
  private closing = false;
  readonly incidents: ConnectionIncident[] = [];
  /** Connections the server closed after saying `Connection: close` (not a failure). */
  announcedCloses = 0;
  /** Connections the server closed after they were idle for its keep-alive timeout (not a failure). */
  idleCloses = 0;

  constructor(
    private readonly port: number,
    private readonly timeoutMs = 20_000,
  ) {}

  get connectionsOpened(): number {
    return this.opened;
  }

  private track(socket: Socket): number {
    const known = this.ids.get(socket);
    if (known !== undefined) return known;
    const id = ++this.opened;
    this.ids.set(socket, id);
    socket.on("error", (error: NodeJS.ErrnoException) => {
      this.incidents.push({
        kind: "socket-error",
        detail: `connection ${id}: ${error.code ?? ""} ${error.message}`.trim(),
        requestId: this.lastRequestOn.get(socket) ?? "(none)",
      });
    });
    socket.on("close", () => {
      const idle = this.idleSince.get(socket);
      if (this.closing || this.destroyedByUs.has(socket)) return;
      if (this.announcedClose.has(socket)) this.announcedCloses++;
      // Node's server closes a connection idle for its keepAliveTimeout (5 s): ordinary HTTP, not a drop.
      else if (idle !== undefined && performance.now() - idle >= IDLE_CLOSE_MS) this.idleCloses++;
      else {
        this.incidents.push({
          kind: "unannounced-close",
          detail: `connection ${id} was closed by the server without a Connection: close response`,
          requestId: this.lastRequestOn.get(socket) ?? "(none)",
        });
      }
    });
    return id;
  }

  /** Sends one request on the connection; never rejects (connection problems become incidents). */
  send(req: RawRequest, requestId: string): Promise<RawResponse | undefined> {
    const started = performance.now();
    return new Promise((resolve) => {
      let settled = false;
      let socket: Socket | undefined;
      const finish = (response: RawResponse | undefined) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(response);
      };
      const headers: Record<string, string | string[]> = { ...req.headers, "x-request-id": requestId };
      // Framing is always explicit: Node sends an unframed body on a GET or DELETE otherwise.
      if (req.body && !req.chunked) headers["content-length"] = String(req.body.length);
      if (req.body && req.chunked) headers["transfer-encoding"] = "chunked";
      const outgoing = request({
        agent: this.agent,
        host: "127.0.0.1",
        port: this.port,
        method: req.method,
        path: req.path,
        headers,
        // Our header names are fixed; values are checked by Node (no CR, LF or NUL).
        setHost: true,
      });
      const timer = setTimeout(() => {
        this.incidents.push({ kind: "timeout", detail: `no complete answer within ${this.timeoutMs} ms`, requestId });
        if (socket) this.destroyedByUs.add(socket);
        outgoing.destroy();
        finish(undefined);
      }, this.timeoutMs);
      outgoing.on("socket", (s: Socket) => {
        socket = s;
        this.track(s);
        this.lastRequestOn.set(s, requestId);
        this.idleSince.delete(s);
      });
      outgoing.on("error", (error: NodeJS.ErrnoException) => {
        this.incidents.push({
          kind: "request-error",
          detail: `${error.code ?? ""} ${error.message}`.trim(),
          requestId,
        });
        finish(undefined);
      });
      outgoing.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", (error: NodeJS.ErrnoException) => {
          this.incidents.push({
            kind: "request-error",
            detail: `response: ${error.code ?? ""} ${error.message}`.trim(),
            requestId,
          });
          finish(undefined);
        });
        res.on("end", () => {
          if (socket) this.idleSince.set(socket, performance.now());
          if (socket && /\bclose\b/i.test(String(res.headers.connection ?? ""))) this.announcedClose.add(socket);
          const echoed = res.headers["x-request-id"];
          if (echoed !== undefined && echoed !== requestId) {
            this.incidents.push({
              kind: "request-id-mismatch",
              detail: `the response carries X-Request-Id ${String(echoed)}: it answers another request`,
              requestId,
            });
          }
          finish({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
            connection: socket ? (this.ids.get(socket) ?? 0) : 0,
            ms: Math.round(performance.now() - started),
          });
        });
      });
      if (req.body) {
        if (req.chunked) {
          // A few chunks, as a streaming client would send them.
          const size = Math.max(1, Math.ceil(req.body.length / 4));
          for (let i = 0; i < req.body.length; i += size) outgoing.write(req.body.subarray(i, i + size));
        } else outgoing.write(req.body);
      }
      outgoing.end();
    });
  }

  close(): void {
    this.closing = true;
    this.agent.destroy();
  }
}
