/**
 * Request and response headers on the hot path, read and set where they cost least.
 *
 * Reading: @hono/node-server's Headers validates the name and scans the value with regular
 * expressions on every `get` (the ~1.2 KB session cookie included); Node's parser has already
 * validated and trimmed them, and `incoming.headers` has them as a plain object.
 *
 * Writing — headers every response carries (X-Request-Id, CORS):
 * Served by @hono/node-server, a response whose headers nobody touched goes out on a fast path (its
 * headers stay a plain object); setting one through Hono (`c.header`, `c.res.headers`) builds a
 * WHATWG Headers object and sends the response the slow way — measured at ~10 µs of server CPU per
 * request for two headers, a tenth of a cached authorized GET. Node's own ServerResponse takes
 * headers set before the response is written and merges them into it, so they are set there.
 * Elsewhere (`app.request()` in tests, other runtimes) they go on the finished response.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context, Next } from "hono";

/** Node's response object for this request, when served by @hono/node-server. */
function nodeResponse(c: Context): ServerResponse | undefined {
  const outgoing = (c.env as { outgoing?: unknown } | undefined)?.outgoing;
  return outgoing && typeof (outgoing as ServerResponse).setHeader === "function"
    ? (outgoing as ServerResponse)
    : undefined;
}

/** A request header by lower-case name: from Node's parsed headers when served by Node. */
export function requestHeader(c: Context, name: string): string | undefined {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  const headers = incoming?.headers;
  if (!headers) return c.req.header(name);
  const value = headers[name];
  return typeof value === "string" ? value : value?.join(", ");
}

export interface ResponseHeaders {
  /** Replaces the header on the response (a header the route sets itself wins). */
  set?: Record<string, string>;
  /** Adds to the header on the response, keeping what the route set. */
  append?: Record<string, string>;
}

/**
 * Runs the rest of the chain with these headers added to its response. Synchronous on the Node path: it
 * returns the chain's own promise, so the middleware costs no promise of its own.
 */
export function withResponseHeaders(c: Context, next: Next, ...sets: (ResponseHeaders | undefined)[]): Promise<void> {
  const outgoing = nodeResponse(c);
  if (outgoing) {
    for (const headers of sets) {
      for (const name in headers?.set) outgoing.setHeader(name, headers.set[name]!);
      for (const name in headers?.append) outgoing.appendHeader(name, headers.append[name]!);
    }
    return next();
  }
  return next().then(() => {
    const target = c.res.headers;
    for (const headers of sets) {
      for (const name in headers?.set) target.set(name, headers.set[name]!);
      for (const name in headers?.append) target.append(name, headers.append[name]!);
    }
  });
}
