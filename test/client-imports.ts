/**
 * What importing a client loads, seen from a fresh process: a resolve hook (registered after any
 * other, so it sees final URLs) writes down every module resolved. Node's own fetch loads node:http,
 * node:net and node:tls, so builtins say nothing; the module URLs do.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";

/**
 * Server code a client must not load: the HTTP server adapter, Hono's app class, the database layer
 * (drizzle, postgres.js, kysely), zod, better-auth's server (its API, auth context and adapters),
 * and this repository's app, SDK and modules, as source or as built.
 */
export const SERVER_CODE =
  /\/node_modules\/(@hono\/node-server|drizzle-orm|postgres|kysely|zod|@better-auth\/[a-z]+-adapter)\/|\/node_modules\/hono\/dist\/(hono|hono-base)\.js|\/node_modules\/better-auth\/dist\/(api|auth|db|context|adapters)\/|\/src\/((app|index)\.ts(\?|$)|db\/|http\/|modules\/)|\/node_modules\/sv-sdk\/dist\/((app|index)\.js|db\/|http\/|modules\/)/;

/** The URLs of the modules (not builtins) a module script loads, run with `node` in `cwd`. */
export async function modulesLoadedBy(script: string, options: { cwd: string; tsx?: boolean }): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), "sv-client-imports-"));
  try {
    const loaded = join(dir, "loaded.txt");
    await writeFile(loaded, "");
    await writeFile(
      join(dir, "hook.mjs"),
      `import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(${JSON.stringify(loaded)}, result.url + "\\n");
  return result;
}`,
    );
    await writeFile(
      join(dir, "register.mjs"),
      `import { register } from "node:module"; register(${JSON.stringify(pathToFileURL(join(dir, "hook.mjs")).href)});`,
    );
    const flags = [
      ...(options.tsx ? ["--import", "tsx"] : []),
      "--import",
      pathToFileURL(join(dir, "register.mjs")).href,
    ];
    await promisify(execFile)(process.execPath, [...flags, "--input-type=module", "-e", script], {
      cwd: options.cwd,
      timeout: 60_000,
    });
    const urls = (await readFile(loaded, "utf8")).split("\n");
    return [...new Set(urls.filter((url) => url.startsWith("file:")))];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
