/**
 * A local stand-in for Resend's HTTP API (POST /emails, POST /emails/batch) on 127.0.0.1, for tests
 * and benchmarks: point the Resend SDK at it with `baseUrl`. It records every request with its
 * Idempotency-Key, answers an already-seen key from its idempotency cache the way Resend does (so
 * `delivered` holds each message once), and can be scripted to answer 429, 5xx, 4xx or hang — with
 * Resend's JSON error shape, or with any body at all (an HTML page, `{}`, nothing), the way a proxy
 * or a degraded provider answers.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface FakeResendRequest {
  path: string;
  idempotencyKey?: string;
  authorization?: string;
  body: unknown;
  /** What the stand-in answered: a status, or "hang". */
  answered: number | "hang";
  /** When the stand-in received it (epoch ms). */
  at: number;
}

export interface FakeResendEmail {
  providerId: string;
  idempotencyKey?: string;
  /** The `send_id` tag sv-sdk puts on every message. */
  sendId?: string;
  to: string | string[];
  subject: string;
  headers?: Record<string, string>;
}

/**
 * A scripted answer: an error status (with Retry-After seconds for 429), or never answering (the
 * request stays open until `close()`). `body` replaces Resend's JSON error (`{ statusCode, name,
 * message }`) with exactly these bytes, sent as `contentType` (default `application/json`).
 */
export type FakeResendAnswer =
  | { status: number; retryAfter?: number; name?: string; message?: string; body?: string; contentType?: string }
  | "hang";

export interface FakeResend {
  /** Base URL for `new Resend(key, { baseUrl })`. */
  url: string;
  requests: FakeResendRequest[];
  /** Messages accepted, each once (replays under a known Idempotency-Key are not repeated here). */
  delivered: FakeResendEmail[];
  /** Queues answers for the next requests, in order; afterwards requests succeed again. */
  script(...answers: FakeResendAnswer[]): void;
  /** Answers every request this way until cleared with `failAll(undefined)`. */
  failAll(answer: FakeResendAnswer | undefined): void;
  /** Delay before each successful answer, in ms (simulates provider latency). */
  latencyMs: number;
  reset(): void;
  close(): Promise<void>;
}

const NAMES: Record<number, string> = {
  400: "validation_error",
  401: "missing_api_key",
  409: "invalid_idempotent_request",
  422: "validation_error",
  429: "rate_limit_exceeded",
  500: "internal_server_error",
  503: "application_error",
};

interface Message {
  to: string | string[];
  subject: string;
  headers?: Record<string, string>;
  tags?: { name: string; value: string }[];
}

/**
 * Starts the stand-in on a free port of 127.0.0.1.
 *
 * @example
 * const fake = await startFakeResend();
 * const sdk = createSdk({ databaseUrl, email: { resendApiKey: "re_test", resendBaseUrl: fake.url, ... } });
 * fake.script({ status: 429, retryAfter: 1 }, { status: 500 });
 * // ... dispatch, then inspect fake.requests / fake.delivered
 * await fake.close();
 */
export async function startFakeResend(): Promise<FakeResend> {
  const queue: FakeResendAnswer[] = [];
  let always: FakeResendAnswer | undefined;
  const cache = new Map<string, { status: number; body: unknown }>();
  const sockets = new Set<Socket>();
  const hanging = new Set<ServerResponse>();

  const fake: FakeResend = {
    url: "",
    requests: [],
    delivered: [],
    latencyMs: 0,
    script: (...answers) => void queue.push(...answers),
    failAll: (answer) => void (always = answer),
    reset() {
      fake.requests.length = 0;
      fake.delivered.length = 0;
      queue.length = 0;
      always = undefined;
      cache.clear();
    },
    close: async () => {
      for (const res of hanging) res.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const reply = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  };

  const accept = (message: Message, idempotencyKey: string | undefined) => {
    const providerId = randomUUID();
    fake.delivered.push({
      providerId,
      idempotencyKey,
      sendId: message.tags?.find((t) => t.name === "send_id")?.value,
      to: message.to,
      subject: message.subject,
      headers: message.headers,
    });
    return { id: providerId };
  };

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const received = Date.now();
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const path = req.url ?? "/";
    const idempotencyKey = req.headers["idempotency-key"] as string | undefined;
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "null");
    } catch {
      body = null;
    }
    const record = (answered: number | "hang") =>
      fake.requests.push({
        path,
        idempotencyKey,
        authorization: req.headers.authorization,
        body,
        answered,
        at: received,
      });

    if (req.method !== "POST" || (path !== "/emails" && path !== "/emails/batch")) {
      record(404);
      return reply(res, 404, { statusCode: 404, name: "not_found", message: "Not found" });
    }
    if (!req.headers.authorization?.startsWith("Bearer ")) {
      record(401);
      return reply(res, 401, { statusCode: 401, name: "missing_api_key", message: "Missing API key" });
    }
    const answer = queue.shift() ?? always;
    if (answer === "hang") {
      record("hang");
      hanging.add(res);
      return;
    }
    if (answer) {
      record(answer.status);
      const headers: Record<string, string> =
        answer.retryAfter !== undefined ? { "retry-after": String(answer.retryAfter) } : {};
      if (answer.body !== undefined) {
        res.writeHead(answer.status, { "content-type": answer.contentType ?? "application/json", ...headers });
        return res.end(answer.body);
      }
      return reply(
        res,
        answer.status,
        {
          statusCode: answer.status,
          name: answer.name ?? NAMES[answer.status] ?? "application_error",
          message: answer.message ?? "scripted failure",
        },
        headers,
      );
    }
    if (fake.latencyMs > 0) await new Promise((r) => setTimeout(r, fake.latencyMs));
    const cached = idempotencyKey ? cache.get(`${path} ${idempotencyKey}`) : undefined;
    if (cached) {
      record(cached.status);
      return reply(res, cached.status, cached.body);
    }
    let result: { status: number; body: unknown };
    if (path === "/emails") {
      result = { status: 200, body: accept(body as Message, idempotencyKey) };
    } else if (!Array.isArray(body) || body.length === 0 || body.length > 100) {
      result = {
        status: 422,
        body: { statusCode: 422, name: "validation_error", message: "A batch holds 1 to 100 emails" },
      };
    } else {
      result = { status: 200, body: { data: (body as Message[]).map((m) => accept(m, idempotencyKey)) } };
    }
    if (idempotencyKey && result.status === 200) cache.set(`${path} ${idempotencyKey}`, result);
    record(result.status);
    reply(res, result.status, result.body);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: Error) =>
      reply(res, 500, { statusCode: 500, name: "application_error", message: error.message }),
    );
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}
