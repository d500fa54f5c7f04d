/**
 * A pass-through in front of the Resend stand-in that notes when each request arrives (the
 * stand-in records a request only once it answers): a scenario can then kill the server while a
 * provider request is known to be in flight. A request whose client dies is still passed on in
 * full and its answer dropped, as a provider finishes what it received.
 */
import { createServer, request, type IncomingMessage } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Cleanup } from "./processes.js";

export interface ProviderTap {
  url: string;
  /** Idempotency-Keys of the requests received so far, in order of arrival. */
  arrived: string[];
}

export async function startProviderTap(target: string, cleanup: Cleanup): Promise<ProviderTap> {
  const tap: ProviderTap = { url: "", arrived: [] };
  const sockets = new Set<Socket>();
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    tap.arrived.push(String(req.headers["idempotency-key"] ?? ""));
    const upstream = request(
      new URL(req.url ?? "/", target),
      { method: req.method, headers: req.headers },
      (answer: IncomingMessage) => {
        const body: Buffer[] = [];
        answer.on("data", (chunk: Buffer) => body.push(chunk));
        answer.on("end", () => {
          if (res.destroyed) return;
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          res.end(Buffer.concat(body));
        });
      },
    );
    upstream.on("error", () => {
      if (!res.destroyed) res.writeHead(502).end();
    });
    upstream.end(Buffer.concat(chunks));
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  tap.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  cleanup.defer("provider tap", async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return tap;
}
