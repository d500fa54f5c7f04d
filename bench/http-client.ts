/**
 * What the bench needs to act as a browser against a server in a child process: a cookie jar that
 * follows Set-Cookie, JSON requests with a trusted Origin, and sign-in through the HTTP API (so the
 * session is signed with that server's secret).
 */
import type { ServerProcess } from "./types.js";

/** Cookies by name, as a browser keeps them (a cleared cookie is dropped). */
export class CookieJar {
  private readonly cookies = new Map<string, string>();

  take(headers: Headers): this {
    for (const line of headers.getSetCookie()) {
      const pair = line.split(";")[0]!;
      const at = pair.indexOf("=");
      const name = pair.slice(0, at);
      const value = pair.slice(at + 1);
      if (value === "" || /max-age=0/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return this;
  }

  get header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; ");
  }
}

export interface JsonResponse {
  status: number;
  body: unknown;
  headers: Headers;
}

let address = 0;
/** A client address for setup requests, outside the load generator's 10.0.0.0/8. */
const setupAddress = () => `192.168.${(++address >> 8) & 255}.${address & 255}`;

/** One JSON request; `jar` sends its cookies and takes the answer's. */
export async function requestJson(
  server: Pick<ServerProcess, "url">,
  path: string,
  init: { method?: string; body?: unknown; jar?: CookieJar; headers?: Record<string, string> } = {},
): Promise<JsonResponse> {
  const headers: Record<string, string> = { "x-forwarded-for": setupAddress(), ...init.headers };
  if (init.body !== undefined) headers["content-type"] = "application/json";
  if (init.jar) headers.cookie = init.jar.header;
  const response = await fetch(`${server.url}${path}`, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    signal: AbortSignal.timeout(30_000),
  });
  init.jar?.take(response.headers);
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: the text
  }
  return { status: response.status, body, headers: response.headers };
}

/** Fails with the answer when the status is not the expected one. */
export function expectStatus(response: JsonResponse, expected: number, what: string): JsonResponse {
  if (response.status !== expected) {
    throw new Error(
      `${what} answered ${response.status} (expected ${expected}): ${JSON.stringify(response.body).slice(0, 300)}`,
    );
  }
  return response;
}

/** Signs in through the server's HTTP API and returns the session's cookie jar. */
export async function signInOver(
  server: Pick<ServerProcess, "url">,
  origin: string,
  email: string,
  password: string,
): Promise<CookieJar> {
  const jar = new CookieJar();
  const response = await requestJson(server, "/api/auth/sign-in/email", {
    body: { email, password },
    jar,
    headers: { origin },
  });
  expectStatus(response, 200, `sign-in of ${email}`);
  return jar;
}
