/**
 * Builds @sv-sdk/client from the repository's src/client.ts (the same source as `sv-sdk/client`):
 *
 * - dist/index.js: one ES module. better-auth's client code (and the few small packages it runs
 *   on) is bundled in, because depending on `better-auth` would install all of it — zod, kysely and
 *   the server, ~25 MB — for ~90 KB of client code. `hono` stays a dependency: its client is small,
 *   and its types are what the declarations below are written in.
 * - dist/*.d.ts: the declarations tsc emits for the client's files. They spell the API's routes and
 *   better-auth's endpoints out (src/client/api.ts, src/client/auth-endpoints.ts), so a consumer's
 *   type-check reads them instead of inferring the server's types again.
 * - dist/THIRD_PARTY_LICENSES.md: the licenses of the bundled packages.
 *
 * The build fails when the bundle would import anything but hono, or a declaration would refer to
 * anything but hono and its own files.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import ts from "typescript";

const here = fileURLToPath(new URL(".", import.meta.url));
const root = join(here, "../..");
const dist = join(here, "dist");
const entry = join(root, "src/client.ts");
/** What the published files may import: the one dependency. */
const allowedImport = (specifier: string) => specifier === "hono" || specifier.startsWith("hono/");

function fail(message: string): never {
  console.error(`@sv-sdk/client build: ${message}`);
  process.exit(1);
}

function checkVersions(): void {
  const own = JSON.parse(readFileSync(join(here, "package.json"), "utf8")) as { version: string };
  const server = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
  // The declarations describe this version of the server's routes.
  if (own.version !== server.version)
    fail(`version ${own.version} differs from sv-sdk's ${server.version}: release them together`);
}

/** The client's declarations, for its own files only (the server's are type-checked, not emitted). */
function emitDeclarations(): void {
  const config = ts.getParsedCommandLineOfConfigFile(
    join(root, "tsconfig.build.json"),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => fail(ts.flattenDiagnosticMessageText(d.messageText, "\n")),
    },
  )!;
  const options: ts.CompilerOptions = {
    ...config.options,
    declaration: true,
    emitDeclarationOnly: true,
    sourceMap: false,
    declarationMap: false,
    noEmit: false,
  };
  const program = ts.createProgram([entry], options);
  const diagnostics = ts.getPreEmitDiagnostics(program);
  if (diagnostics.length)
    fail(
      `type errors:\n${ts.formatDiagnostics(diagnostics, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => "\n" })}`,
    );

  const src = join(root, "src");
  const shipped = new Set<string>();
  const pending = [entry];
  // The declaration files reachable from the entry's: what a consumer's tsc will read.
  while (pending.length) {
    const file = pending.pop()!;
    if (shipped.has(file)) continue;
    shipped.add(file);
    let text = "";
    program.emit(program.getSourceFile(file), (_name, data) => void (text = data), undefined, true);
    const out = file === entry ? join(dist, "index.d.ts") : join(dist, relative(src, file).replace(/\.ts$/, ".d.ts"));
    const specifiers = [...text.matchAll(/(?:from |import\()"([^"]+)"/g)].map((m) => m[1]!);
    for (const specifier of specifiers) {
      if (allowedImport(specifier)) continue;
      if (!specifier.startsWith(".")) fail(`${relative(root, file)}'s declaration refers to ${specifier}`);
      const target = join(dirname(file), specifier.replace(/\.js$/, ".ts"));
      if (!target.startsWith(join(src, "client") + sep) && target !== entry)
        fail(`${relative(root, file)}'s declaration refers to ${relative(root, target)}`);
      pending.push(target);
    }
    // index.d.ts sits where client.d.ts would, one level up from client/: its imports stay valid.
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, text);
  }
}

interface PackageInfo {
  name: string;
  version: string;
  license: string;
  dir: string;
}

/** The packages whose code the bundle holds, with their license texts. */
function thirdPartyLicenses(inputs: string[]): string {
  const packages = new Map<string, PackageInfo>();
  for (const input of inputs) {
    const match = /^(.*node_modules\/((?:@[^/]+\/)?[^/]+))\//.exec(input);
    if (!match) continue;
    const dir = join(root, match[1]!);
    if (packages.has(dir)) continue;
    const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
      name: string;
      version: string;
      license: string;
    };
    packages.set(dir, { name: pkg.name, version: pkg.version, license: pkg.license, dir });
  }
  const sections = [...packages.values()]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((p) => {
      const file = ["LICENSE", "LICENSE.md", "LICENSE.txt", "license"]
        .map((f) => join(p.dir, f))
        .find((f) => {
          try {
            readFileSync(f);
            return true;
          } catch {
            return false;
          }
        });
      if (!file) fail(`${p.name} has no license file to ship with its bundled code`);
      return `## ${p.name} ${p.version} (${p.license})\n\n${readFileSync(file, "utf8").trim()}\n`;
    });
  return `# Third-party code in dist/index.js\n\n${sections.join("\n")}`;
}

async function bundle(): Promise<void> {
  const result = await build({
    absWorkingDir: root,
    entryPoints: [entry],
    outfile: join(dist, "index.js"),
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    mainFields: ["module", "main"],
    external: ["hono", "hono/*"],
    // nanostores reads process.env.NODE_ENV bare (for its test-only cleanup hooks), expecting a
    // bundler to replace it; a page loading this file unbundled has no `process`.
    define: { "process.env.NODE_ENV": '"production"' },
    metafile: true,
    legalComments: "eof",
    logLevel: "warning",
  });
  const output = Object.values(result.metafile.outputs)[0]!;
  for (const { path } of output.imports) if (!allowedImport(path)) fail(`the bundle imports ${path}`);
  writeFileSync(join(dist, "THIRD_PARTY_LICENSES.md"), thirdPartyLicenses(Object.keys(output.inputs)));
}

checkVersions();
rmSync(dist, { recursive: true, force: true });
emitDeclarations();
await bundle();
console.log(`@sv-sdk/client built into ${relative(root, dist)}`);
