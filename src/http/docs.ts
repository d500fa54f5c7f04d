/**
 * `/docs`: a reference page rendered on the server from the OpenAPI document. Self-contained (no CDN
 * script), so it works offline and behind strict content security policies.
 */
interface OpenApiOperation {
  summary?: string;
  description?: string;
  tags?: string[];
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, { description?: string }>;
  security?: unknown[];
}

interface OpenApiDocument {
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, OpenApiOperation>>;
}

/** Escapes text for HTML content and double- or single-quoted attribute values. */
export const escapeHtml = (value: string) =>
  value.replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch]!);

const METHODS = ["get", "post", "put", "patch", "delete"];

export function renderDocsPage(document: OpenApiDocument): string {
  const groups = new Map<string, string[]>();
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation) continue;
      const tag = operation.tags?.[0] ?? "Other";
      const body = operation.requestBody?.content?.["application/json"]?.schema;
      const responses = Object.entries(operation.responses ?? {})
        .map(([status, r]) => `<li><code>${escapeHtml(status)}</code> ${escapeHtml(r.description ?? "")}</li>`)
        .join("");
      const html = `<section class="op" id="${escapeHtml(method + path)}">
  <h3><span class="method ${method}">${method.toUpperCase()}</span> <code>${escapeHtml(path)}</code></h3>
  ${operation.summary ? `<p>${escapeHtml(operation.summary)}</p>` : ""}
  ${operation.description ? `<p class="desc">${escapeHtml(operation.description)}</p>` : ""}
  ${body ? `<details><summary>Request body</summary><pre>${escapeHtml(JSON.stringify(body, null, 2))}</pre></details>` : ""}
  <ul class="responses">${responses}</ul>
</section>`;
      groups.set(tag, [...(groups.get(tag) ?? []), html]);
    }
  }
  const toc = [...groups.keys()].map((tag) => `<li><a href="#tag-${escapeHtml(tag)}">${escapeHtml(tag)}</a></li>`).join("");
  const sections = [...groups.entries()]
    .map(([tag, ops]) => `<h2 id="tag-${escapeHtml(tag)}">${escapeHtml(tag)}</h2>${ops.join("\n")}`)
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(document.info.title)} — API reference</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0;display:flex;color:#1d2330}
nav{width:220px;flex:none;padding:1rem;background:#f4f5f7;height:100vh;overflow:auto;box-sizing:border-box;position:sticky;top:0;align-self:flex-start}
main{flex:1;min-width:0;padding:1rem 2rem;max-width:960px}
.op{border:1px solid #dde1e6;border-radius:6px;padding:.5rem 1rem;margin:.75rem 0}
.method{display:inline-block;min-width:4.5em;text-align:center;border-radius:4px;color:#fff;font-size:.8em;padding:.1em .4em}
.get{background:#2f7d32}.post{background:#1f5fbf}.put{background:#8a5a00}.patch{background:#6b3fa0}.delete{background:#b3261e}
pre{background:#f4f5f7;padding:.5rem;overflow:auto}.responses{margin:.25rem 0}
</style></head>
<body><nav><strong>${escapeHtml(document.info.title)}</strong> <small>${escapeHtml(document.info.version)}</small>
<ul>${toc}</ul><p><a href="/openapi.json">openapi.json</a></p></nav>
<main><h1>${escapeHtml(document.info.title)}</h1><p>${escapeHtml(document.info.description ?? "")}</p>${sections}</main></body></html>`;
}
