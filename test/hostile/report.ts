/**
 * Failing cases of the hostile-input run, as text a person can replay: the route, the request (method,
 * path, headers with credentials named, body bytes) and what came back — grouped by cause.
 */

export interface Failure {
  route: string;
  /** Which sample of the route (replay: HOSTILE_SEED, HOSTILE_ROUTES=route, this index). */
  index: number;
  requestId: string;
  defects: string[];
  auth: string;
  request: { method: string; path: string; headers: Record<string, string | string[]>; body: string; chunked: boolean };
  response?: { status: number; contentType: string; body: string; connection: number };
  /** Why this case fails: one line per broken rule. */
  reasons: string[];
  /** What the server logged for this request (unhandled errors). */
  serverLog: string[];
}

/** Bytes as printable text: ASCII as is, anything else as \xNN; long bodies cut. */
export function showBytes(bytes: Buffer | undefined, max = 400): string {
  if (!bytes || bytes.length === 0) return "(empty)";
  let out = "";
  const n = Math.min(bytes.length, max);
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    out +=
      b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : b === 0x0a ? "\\n" : `\\x${b.toString(16).padStart(2, "0")}`;
  }
  if (bytes.length > max) out += `… (${bytes.length} bytes in all)`;
  return out;
}

/** Text (a path) whose chars ≥ 0x80 go out as single latin1 bytes. */
export function showLatin1(text: string, max = 300): string {
  return showBytes(Buffer.from(text, "latin1"), max);
}

/** A server log line without what varies between requests (parameters, column lists, stack). */
export function logEssence(line: string): string {
  return line
    .replace(/\\n|\n/g, " ")
    .replace(/params: .*$/, "")
    .replace(/select .*? from/i, "select … from")
    .replace(/ @ .*$/, "")
    .replace(/\$\d+/g, "$n")
    .slice(0, 200)
    .trim();
}

/** The cause a failure is grouped under: which rules broke, how the server answered, what it logged. */
export function causeOf(f: Failure): string {
  const kinds = [...new Set(f.reasons.map((r) => r.split(":")[0]!).filter((k) => k !== "connection-context"))];
  const connection = f.reasons
    .filter((r) => r.startsWith("connection:"))
    .map((r) => r.replace(/^connection: (\S+).*$/, "$1"))
    .sort();
  const status = f.response?.status ?? "no response";
  let code = "";
  try {
    code = (JSON.parse(f.response?.body ?? "") as { code?: string }).code ?? "";
  } catch {
    code = (f.response?.body ?? "").slice(0, 60);
  }
  const line = f.serverLog.find((l) => l.startsWith("unhandled error")) ?? f.serverLog[0];
  const log = line ? ` | server: ${logEssence(line)}` : "";
  // A broken connection is grouped by how the request before it on the connection ended.
  const context = f.reasons.find((r) => r.startsWith("connection-context"));
  const statuses = context ? [...context.matchAll(/→ (\w+(?: \w+)?)\)/g)].map((m) => m[1]) : [];
  const oversized = f.defects.some((d) => d.includes("over the limit"));
  const after = oversized
    ? " | the request itself was over the body limit"
    : context
      ? ` | after ${statuses.includes("413") ? "a 413" : statuses.join(", then ") || "health checks"} on the same connection`
      : "";
  return `${kinds.join(" + ")}${connection.length ? ` (${[...new Set(connection)].join(", ")})` : ""} | ${status} ${code}${log}${after}`;
}

export function formatFailure(f: Failure): string {
  const r = f.request;
  const headers = Object.entries(r.headers)
    .map(
      ([k, v]) => `    ${k}: ${Array.isArray(v) ? v.map((x) => showLatin1(x, 200)).join(" | ") : showLatin1(v, 200)}`,
    )
    .join("\n");
  return [
    `  ${f.route}  [sample ${f.index}, request ${f.requestId}, auth ${f.auth}]`,
    `  defects: ${f.defects.join("; ")}`,
    `  why: ${f.reasons.join("; ")}`,
    `  request: ${r.method} ${showLatin1(r.path)}${r.chunked ? "  (body chunked)" : ""}`,
    headers,
    `    body: ${r.body}`,
    f.response
      ? `  response: ${f.response.status} ${f.response.contentType} (connection ${f.response.connection}) ${f.response.body}`
      : "  response: none",
    ...(f.serverLog.length ? [`  server log: ${f.serverLog.join(" || ")}`] : []),
  ].join("\n");
}

/** Every failure, grouped by cause (each group: its count, its routes, then its cases — the first few in full). */
export function formatReport(failures: Failure[], perGroup = 3): string {
  const groups = new Map<string, Failure[]>();
  for (const f of failures) {
    const key = causeOf(f);
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  const sorted = [...groups.entries()].sort((a, b) => b[1].length - a[1].length);
  const parts = [`${failures.length} failing cases in ${groups.size} groups`];
  for (const [cause, list] of sorted) {
    const routes = [...new Set(list.map((f) => f.route))];
    parts.push(
      "",
      `== ${cause}  (${list.length} cases; routes: ${routes.join(", ")})`,
      ...list.slice(0, perGroup).map(formatFailure),
      ...(list.length > perGroup
        ? [
            `  … and ${list.length - perGroup} more: ${list
              .slice(perGroup)
              .map((f) => `${f.route}#${f.index}`)
              .join(", ")}`,
          ]
        : []),
    );
  }
  return parts.join("\n");
}
