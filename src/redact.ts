/**
 * Secrets never reach the audit trail or the logs: any key that looks like a credential, at any depth
 * of an object, has its value replaced (audit metadata and changes; the logger's fields).
 */
export const SECRET_KEY = /password|secret|token|api[_-]?key|authorization|cookie/i;
export const REDACTED = "[REDACTED]";

export function redact<T>(value: T): T {
  return redactValue(value, new WeakSet()) as T;
}

/**
 * NUL cannot be stored in PostgreSQL text or jsonb: a refused sign-in whose email carried one would
 * fail its own audit event. The trail records U+FFFD in its place.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is the character this replaces
const NUL = /\u0000/g;

function redactValue(value: unknown, seen: WeakSet<object>): unknown {
  if (typeof value === "string") return value.includes("\u0000") ? value.replace(NUL, "\uFFFD") : value;
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Date) return value.toISOString();
  // `seen` holds the ancestors only: an object referenced twice is copied twice, a cycle is cut.
  if (seen.has(value)) return "[Circular]";
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((item) => redactValue(item, seen));
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      out[redactValue(key, seen) as string] = SECRET_KEY.test(key) ? REDACTED : redactValue(item, seen);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}
