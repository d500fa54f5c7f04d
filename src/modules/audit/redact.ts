/**
 * Secrets never reach the audit trail: any key that looks like a credential, at any depth of the
 * metadata or the before/after changes, has its value replaced.
 */
export const SECRET_KEY = /password|secret|token|api[_-]?key|authorization|cookie/i;
export const REDACTED = "[REDACTED]";

export function redact<T>(value: T): T {
  return redactValue(value, new WeakSet()) as T;
}

function redactValue(value: unknown, seen: WeakSet<object>): unknown {
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Date) return value.toISOString();
  // `seen` holds the ancestors only: an object referenced twice is copied twice, a cycle is cut.
  if (seen.has(value)) return "[Circular]";
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((item) => redactValue(item, seen));
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      out[key] = SECRET_KEY.test(key) ? REDACTED : redactValue(item, seen);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}
