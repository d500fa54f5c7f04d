/**
 * The client side of the fault scenarios: every request on a connection of its own (so a refused or
 * dropped connection is seen as such, never hidden by a keep-alive pool's retry), bounded by a
 * timer of ours (`setTimeout`, not `AbortSignal.timeout`: nodejs/node#57736), and never throwing —
 * a hang, a reset and a refusal are outcomes to assert on, like a status.
 */
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";

export interface Answer {
  /** The HTTP status; 0 when the connection failed (see `error`), -1 when we gave up waiting. */
  status: number;
  /** The socket error's code (ECONNREFUSED, ECONNRESET, …) or "timeout". */
  error?: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** performance.now() when the request was sent and when its outcome was known. */
  startedAt: number;
  endedAt: number;
  ms: number;
}

export interface SendOptions {
  method?: string;
  headers?: Record<string, string>;
  /** JSON-encoded when not a string. */
  body?: unknown;
  /** Give up after this long (status -1). Default 30 s. */
  timeoutMs?: number;
}

export function send(url: string, options: SendOptions = {}): Promise<Answer> {
  const startedAt = performance.now();
  const payload =
    options.body === undefined
      ? undefined
      : typeof options.body === "string"
        ? options.body
        : JSON.stringify(options.body);
  const headers: Record<string, string> = { connection: "close", ...options.headers };
  if (payload !== undefined) {
    headers["content-type"] ??= "application/json";
    headers["content-length"] = String(Buffer.byteLength(payload));
  }
  return new Promise<Answer>((resolve) => {
    let settled = false;
    const finish = (answer: Omit<Answer, "startedAt" | "endedAt" | "ms">) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const endedAt = performance.now();
      resolve({ ...answer, startedAt, endedAt, ms: endedAt - startedAt });
    };
    const req = httpRequest(url, { method: options.method ?? "GET", headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        finish({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", (error: NodeJS.ErrnoException) =>
        finish({
          status: 0,
          error: error.code ?? error.message,
          headers: res.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        }),
      );
      res.on("aborted", () => finish({ status: 0, error: "ECONNRESET", headers: res.headers, body: "" }));
    });
    const timer = setTimeout(() => {
      finish({ status: -1, error: "timeout", headers: {}, body: "" });
      req.destroy();
    }, options.timeoutMs ?? 30_000);
    req.on("error", (error: NodeJS.ErrnoException) =>
      finish({ status: 0, error: error.code ?? error.message, headers: {}, body: "" }),
    );
    req.end(payload);
  });
}

/** The parsed JSON body, or undefined. */
export function jsonOf<T = Record<string, unknown>>(answer: Answer): T | undefined {
  try {
    return JSON.parse(answer.body) as T;
  } catch {
    return undefined;
  }
}

/** "200", "503 DATABASE_UNAVAILABLE", "ECONNRESET": how an answer reads in a failure message. */
export function describe(answer: Answer): string {
  if (answer.status <= 0) return answer.error ?? "no answer";
  const code = jsonOf<{ code?: string }>(answer)?.code;
  return code ? `${answer.status} ${code}` : String(answer.status);
}

/** What every refusal for a database fault must be: a 503 problem document with Retry-After. */
export function isRetryable503(answer: Answer): boolean {
  return (
    answer.status === 503 &&
    String(answer.headers["content-type"] ?? "").startsWith("application/problem+json") &&
    Number(answer.headers["retry-after"]) > 0
  );
}

/** `Set-Cookie` lines as a `Cookie` header (cleared cookies left out). */
export function cookiesOf(answer: Answer): string {
  const lines = answer.headers["set-cookie"] ?? [];
  return lines
    .map((line) => line.split(";")[0]!)
    .filter((pair) => !pair.endsWith("="))
    .join("; ");
}

export interface Account {
  email: string;
  password: string;
  userId: string;
  /** Cookie + Origin, as a browser sends them (the cookie cache included). */
  headers: Record<string, string>;
}

/**
 * Signs a new user up and in over HTTP (two password hashes at the real cost: keep these few; the
 * sign-up and sign-in routes allow 10 a minute per client address).
 */
export async function signUpAndIn(
  base: string,
  origin: string,
  email: string,
  password = "correct horse battery staple",
): Promise<Account> {
  const common = { origin };
  const up = await send(`${base}/api/auth/sign-up/email`, {
    method: "POST",
    headers: common,
    body: { email, password, name: "Fault" },
  });
  if (up.status !== 200) throw new Error(`sign-up answered ${describe(up)}: ${up.body}`);
  const account = await signIn(base, origin, email, password);
  return account;
}

export async function signIn(base: string, origin: string, email: string, password: string): Promise<Account> {
  const answer = await send(`${base}/api/auth/sign-in/email`, {
    method: "POST",
    headers: { origin },
    body: { email, password },
  });
  if (answer.status !== 200) throw new Error(`sign-in answered ${describe(answer)}: ${answer.body}`);
  const userId = jsonOf<{ user: { id: string } }>(answer)!.user.id;
  return { email, password, userId, headers: { cookie: cookiesOf(answer), origin } };
}

/** A tenant (organization) created by `owner` over HTTP; the headers act in it. */
export async function createTenant(
  base: string,
  owner: Account,
  name: string,
): Promise<{ id: string; headers: Record<string, string> }> {
  const slug = `${name.toLowerCase().replace(/[^a-z0-9]+/g, "-")}-${Math.random().toString(36).slice(2, 8)}`;
  const answer = await send(`${base}/api/auth/organization/create`, {
    method: "POST",
    headers: owner.headers,
    body: { name, slug },
  });
  if (answer.status !== 200) throw new Error(`organization/create answered ${describe(answer)}: ${answer.body}`);
  const id = jsonOf<{ id: string }>(answer)!.id;
  return { id, headers: { ...owner.headers, "x-tenant-id": id } };
}
