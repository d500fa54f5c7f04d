/**
 * A request body is read whole, checked, and then handed to the routes — before any of them runs:
 *
 * - Size: above `maxBytes` the answer is 413. The rest of a refused body is still on its way, and a
 *   keep-alive socket would read it as the next request: the body is read to its end and dropped
 *   (up to `drainBytes`), so the connection stays usable; past that the answer closes the connection.
 *   Every body is read to its end the same way, so no refusal (a bad path parameter, a wrong content
 *   type) ever leaves unread bytes behind either.
 * - JSON bodies must be valid UTF-8 (never silently turned into U+FFFD and stored), well-formed
 *   Unicode (no lone surrogates from `\ud800` escapes), an object at the top (every route takes
 *   one; better-auth ran some on `42` or `[]`), and at most MAX_DEPTH levels deep (deeper nesting
 *   overflowed the stack in a library). Anything else is a 400 problem naming the body; the route
 *   never runs, so nothing is written.
 */
import type { Context, MiddlewareHandler } from "hono";
import { AppError, CommonErrors } from "../errors.js";
import { problemResponse } from "./problem.js";

export const MAX_DEPTH = 32;

// ignoreBOM keeps a byte-order mark in the text, where JSON.parse refuses it (RFC 8259: JSON text
// carries none; better-auth's parser skipped it and ran the request).
const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
/** A surrogate that is not half of a pair (in a `u` regex, a pair is one code point). */
const LONE_SURROGATE = /\p{Cs}/u;

/** The deepest nesting of arrays and objects in JSON text (strings skipped). */
export function jsonDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 92 /* \ */) i++;
      else if (ch === 34 /* " */) inString = false;
    } else if (ch === 34) inString = true;
    else if (ch === 123 /* { */ || ch === 91 /* [ */) deepest = Math.max(deepest, ++depth);
    else if (ch === 125 /* } */ || ch === 93 /* ] */) depth--;
  }
  return deepest;
}

const refuse = (reason: string) =>
  CommonErrors.VALIDATION_FAILED(
    { errors: [{ path: "(body)", message: reason }] },
    `The request body is not acceptable: ${reason}`,
  );

/** Checks a JSON body's text; throws a 400 AppError when it is not acceptable. */
export function checkJsonBody(bytes: Uint8Array): void {
  let text: string;
  try {
    text = strict.decode(bytes);
  } catch {
    throw refuse("it is not valid UTF-8");
  }
  if (jsonDepth(text) > MAX_DEPTH) throw refuse(`it is nested deeper than ${MAX_DEPTH} levels`);
  let value: unknown;
  try {
    value = JSON.parse(text, (key, item: unknown) => {
      if (LONE_SURROGATE.test(key) || (typeof item === "string" && LONE_SURROGATE.test(item)))
        throw new SyntaxError("lone surrogate");
      return item;
    });
  } catch (error) {
    if ((error as Error).message === "lone surrogate")
      throw refuse("it contains a lone UTF-16 surrogate (\\ud800-\\udfff)");
    throw new AppError("BAD_REQUEST", 400, "The request body is not valid JSON");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw refuse("it must be a JSON object");
}

export interface RequestBodyOptions {
  /** Largest accepted body (413 above). */
  maxBytes: number;
  /** A refused body up to this size is read and dropped to keep the connection; beyond, it is closed. Default 16 MiB. */
  drainBytes?: number;
}

/** Reads and drops the rest of a stream, up to `limit` bytes; whether it ended within it. */
async function discard(reader: ReadableStreamDefaultReader<Uint8Array>, limit: number): Promise<boolean> {
  let read = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return true;
    read += value.byteLength;
    if (read > limit) {
      await reader.cancel().catch(() => undefined);
      return false;
    }
  }
}

function tooLarge(c: Context, maxBytes: number, keepConnection: boolean): Response {
  const response = problemResponse(
    c,
    413,
    "PAYLOAD_TOO_LARGE",
    `The request body is too large (at most ${maxBytes} bytes)`,
  );
  if (!keepConnection) response.headers.set("connection", "close");
  return response;
}

const JSON_TYPE = /^application\/([\w.+-]*\+)?json\b/i;

/** Middleware for the methods that carry a body. */
export function requestBody(options: RequestBodyOptions): MiddlewareHandler {
  const { maxBytes } = options;
  const drainBytes = Math.max(options.drainBytes ?? 16 * 1024 * 1024, maxBytes);
  return async (c, next) => {
    const raw = c.req.raw;
    if (!raw.body) return next();
    const declared = c.req.header("content-length");
    const length = declared === undefined ? undefined : Number(declared);
    const reader = raw.body.getReader();
    if (length !== undefined && length > maxBytes)
      return tooLarge(c, maxBytes, length <= drainBytes && (await discard(reader, drainBytes)));
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) return tooLarge(c, maxBytes, await discard(reader, drainBytes - total));
      chunks.push(value);
    }
    const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    if (JSON_TYPE.test(c.req.header("content-type") ?? "") && bytes.byteLength > 0) checkJsonBody(bytes);
    // The routes read the body as read here (the original stream is spent).
    c.req.raw = new Request(raw.url, {
      method: raw.method,
      headers: raw.headers,
      body: bytes.byteLength > 0 ? bytes : undefined,
      signal: raw.signal,
    });
    return next();
  };
}
