/**
 * Permission strings and the compiled matcher a check runs against.
 *
 * Grammar: `*`, or segments separated by `:` (`resource:action`, `permissions:read:self`), each
 * `[a-z0-9][a-z0-9_.-]*`, at least two; the last one may be `*`. Matching: `*` grants everything;
 * `a:*` grants every permission that starts with `a:` (`audit:*` grants `audit:read` and
 * `audit:export`); anything else grants exactly itself.
 */
const SEGMENT = "[a-z0-9][a-z0-9_.-]*";
const PERMISSION = new RegExp(`^(\\*|${SEGMENT}(:${SEGMENT})*:(${SEGMENT}|\\*))$`);

export function isValidPermission(permission: string): boolean {
  return permission.length <= 200 && PERMISSION.test(permission);
}

/** A set of held permissions, compiled for checks that cost a few hash lookups. */
export interface Matcher {
  readonly permissions: readonly string[];
  has(permission: string): boolean;
  /** The answer for a permission already asked (so already validated), without work; else undefined. */
  known(permission: string): boolean | undefined;
}

/** Answers remembered per matcher: enough for every permission an application checks. */
const MEMO_LIMIT = 1024;

export function compileMatcher(permissions: readonly string[]): Matcher {
  const all = permissions.includes("*");
  const exact = new Set<string>();
  // `audit:*` is kept as the prefix `audit`.
  const prefixes = new Set<string>();
  for (const p of permissions) {
    if (p.endsWith(":*")) prefixes.add(p.slice(0, -2));
    else exact.add(p);
  }
  const noPrefixes = prefixes.size === 0;
  const memo = new Map<string, boolean>();
  const evaluate = (permission: string): boolean => {
    if (all || exact.has(permission)) return true;
    if (noPrefixes) return false;
    for (let i = permission.indexOf(":"); i !== -1; i = permission.indexOf(":", i + 1)) {
      if (prefixes.has(permission.slice(0, i))) return true;
    }
    return false;
  };
  return {
    permissions,
    has(permission) {
      const answer = evaluate(permission);
      if (memo.size < MEMO_LIMIT) memo.set(permission, answer);
      return answer;
    },
    known: (permission) => memo.get(permission),
  };
}
