/**
 * Keyset pages for the permissions lists. A cursor is opaque to clients: base64url JSON naming the
 * list, the scope (and filter) it was issued for, and the key of the last row returned. It is accepted
 * only by the same list in the same scope — a cursor carried to another tenant is refused (400), not
 * reinterpreted — and it only ever positions a query that is already confined to the caller's scope
 * (explicit filters, then row-level security), so no cursor, forged or foreign, reaches another
 * tenant's rows. Nothing in it is secret, so it is not signed: editing one can only skip rows of the
 * caller's own list.
 */
import { PermissionsErrors } from "./errors.js";

export const PAGE_LIMIT_DEFAULT = 50;
export const PAGE_LIMIT_MAX = 200;
/** Longer input is refused before it is decoded. */
const CURSOR_MAX_LENGTH = 1024;

export interface PageOptions {
  /** Rows per page: 1–200, default 50. */
  limit?: number;
  /** `nextCursor` of the previous page; omitted or null for the first page. */
  cursor?: string | null;
}

type Json = string | number | boolean | null;

export function pageLimit(limit: number | undefined): number {
  if (limit === undefined) return PAGE_LIMIT_DEFAULT;
  if (!Number.isInteger(limit) || limit < 1 || limit > PAGE_LIMIT_MAX) throw PermissionsErrors.INVALID_LIMIT({ limit });
  return limit;
}

/** A cursor after `key`, for the list `list` issued in `bound` (its scope and filters). */
export function encodeCursor(list: string, bound: readonly Json[], key: readonly Json[]): string {
  return Buffer.from(JSON.stringify([list, ...bound, ...key])).toString("base64url");
}

/**
 * The key a cursor carries, if it was issued by `list` for exactly `bound` and its key passes `valid`;
 * INVALID_CURSOR otherwise.
 */
export function decodeCursor<K extends Json[]>(
  cursor: string,
  list: string,
  bound: readonly Json[],
  valid: (key: Json[]) => key is K,
): K {
  if (cursor.length <= CURSOR_MAX_LENGTH) {
    let parts: unknown;
    try {
      parts = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    } catch {
      parts = undefined;
    }
    if (Array.isArray(parts) && parts[0] === list && bound.every((value, i) => parts[i + 1] === value)) {
      const key = parts.slice(bound.length + 1) as Json[];
      if (valid(key)) return key;
    }
  }
  throw PermissionsErrors.INVALID_CURSOR();
}
