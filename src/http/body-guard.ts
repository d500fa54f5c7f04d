/**
 * What a JSON request body must be before any route reads it: valid UTF-8 (never silently turned
 * into U+FFFD and stored), well-formed Unicode (no lone surrogates from `\ud800` escapes), an
 * object at the top (every route takes one; better-auth ran some on `42` or `[]`), and at most
 * MAX_DEPTH levels deep (deeper nesting overflowed the stack in a library). Anything else is a 400
 * problem naming the body; the route never runs, so nothing is written.
 */
import type { MiddlewareHandler } from "hono";
import { AppError, CommonErrors } from "../errors.js";

export const MAX_DEPTH = 32;

const strict = new TextDecoder("utf-8", { fatal: true });
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
  CommonErrors.VALIDATION_FAILED({ errors: [{ path: "(body)", message: reason }] }, `The request body is not acceptable: ${reason}`);

/** For requests that carry a body: checks JSON bodies, and leaves the rest to the routes. */
export const jsonBodyGuard: MiddlewareHandler = async (c, next) => {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/([\w.+-]*\+)?json\b/i.test(type)) return next();
  const bytes = await c.req.arrayBuffer();
  if (bytes.byteLength === 0) return next();
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
      if (LONE_SURROGATE.test(key) || (typeof item === "string" && LONE_SURROGATE.test(item))) throw new SyntaxError("lone surrogate");
      return item;
    });
  } catch (error) {
    if ((error as Error).message === "lone surrogate") throw refuse("it contains a lone UTF-16 surrogate (\\ud800-\\udfff)");
    throw new AppError("BAD_REQUEST", 400, "The request body is not valid JSON");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw refuse("it must be a JSON object");
  return next();
};
