/**
 * Writes src/client/auth-endpoints.ts: every endpoint of better-auth's client (with the plugins of
 * src/client/auth-plugins.ts) as a plain type — its argument and its data spelled out, no reference
 * to better-auth left. Why: src/client/auth-types.ts. Run it after upgrading better-auth or changing
 * the plugins (the build fails until then):
 *
 *   node --import tsx packages/client/generate-auth-endpoints.ts
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const root = fileURLToPath(new URL("../..", import.meta.url));
const target = join(root, "src/client/auth-endpoints.ts");
const probeFile = join(root, "src/client/__auth-probe.ts");

/** Endpoints this server cannot answer usefully: it configures no social or OAuth provider. */
const LEFT_OUT = new Set([
  "signIn.social",
  "linkSocial",
  "unlinkAccount",
  "refreshToken",
  "getAccessToken",
  "accountInfo",
]);
/** Declared by hand in auth-types.ts, or internals of better-auth's client. */
const NOT_ENDPOINTS = new Set(["$fetch", "$store", "$Infer", "$ERROR_CODES", "hydrateSession"]);
/** Library types a response may carry; printed by name (global in every TypeScript lib). */
const GLOBAL_TYPES = new Set(["Date", "Uint8Array", "ArrayBuffer", "Blob", "URL"]);

const FETCH_OPTIONS = new Set(["fetchOptions"]);

const PROBE = `
import { createAuthClient } from "better-auth/client";
import { authClientPlugins } from "./auth-plugins.js";
export const auth = createAuthClient({ plugins: authClientPlugins() });
`;

function compile(source: string) {
  const config = ts.getParsedCommandLineOfConfigFile(
    join(root, "tsconfig.json"),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
      },
    },
  )!;
  const options = { ...config.options, noEmit: true };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, ...rest) =>
    name === probeFile ? ts.createSourceFile(name, source, language) : getSourceFile(name, language, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === probeFile || fileExists(name);
  const program = ts.createProgram([probeFile], options, host);
  const errors = ts.getPreEmitDiagnostics(program, program.getSourceFile(probeFile));
  if (errors.length) throw new Error(ts.formatDiagnostics(errors, host));
  return { checker: program.getTypeChecker(), file: program.getSourceFile(probeFile)! };
}

interface Found {
  endpoints: string[];
  atoms: string[];
}

/** The client's callable endpoints (generic over `FetchOptions`) and its `use*` atoms, by path. */
function findEndpoints(): Found {
  const { checker, file } = compile(PROBE);
  const auth = checker.getExportsOfModule(checker.getSymbolAtLocation(file)!).find((s) => s.name === "auth")!;
  const found: Found = { endpoints: [], atoms: [] };
  const walk = (type: ts.Type, path: string[]) => {
    for (const property of checker.getPropertiesOfType(type)) {
      const name = [...path, property.name].join(".");
      if (NOT_ENDPOINTS.has(name) || LEFT_OUT.has(name)) continue;
      const propertyType = checker.getTypeOfSymbol(property);
      const signature = propertyType.getCallSignatures()[0];
      if (signature?.typeParameters?.[0]?.symbol.name === "FetchOptions") found.endpoints.push(name);
      else if (path.length === 0 && property.name.startsWith("use") && propertyType.getProperty("subscribe"))
        found.atoms.push(name);
      else if (!signature && propertyType.flags & (ts.TypeFlags.Object | ts.TypeFlags.Intersection) && path.length < 3)
        walk(propertyType, [...path, property.name]);
    }
  };
  walk(checker.getTypeOfSymbol(auth), []);
  return found;
}

class Printer {
  private readonly stack: ts.Type[] = [];
  constructor(private readonly checker: ts.TypeChecker) {}

  /** `omit`: properties left out of the top-level object (or of each member of a top-level union). */
  print(type: ts.Type, indent = "", omit?: ReadonlySet<string>): string {
    if (this.stack.includes(type)) throw new Error(`a recursive type: ${this.checker.typeToString(type)}`);
    this.stack.push(type);
    try {
      return this.printType(type, indent, omit);
    } finally {
      this.stack.pop();
    }
  }

  private printType(type: ts.Type, indent: string, omit: ReadonlySet<string> | undefined): string {
    const f = type.flags;
    const { checker } = this;
    if (f & ts.TypeFlags.Any) return "any";
    if (f & ts.TypeFlags.Unknown) return "unknown";
    if (f & ts.TypeFlags.String) return "string";
    if (f & ts.TypeFlags.Number) return "number";
    if (f & ts.TypeFlags.Boolean) return "boolean";
    if (f & ts.TypeFlags.BigInt) return "bigint";
    if (f & ts.TypeFlags.Null) return "null";
    if (f & ts.TypeFlags.Undefined) return "undefined";
    if (f & ts.TypeFlags.Void) return "void";
    if (f & ts.TypeFlags.Never) return "never";
    if (f & (ts.TypeFlags.StringLiteral | ts.TypeFlags.NumberLiteral | ts.TypeFlags.BooleanLiteral))
      return checker.typeToString(type);
    if (type.isUnion()) return this.union(type.types, indent, omit);
    if (type.isIntersection()) {
      // `string & {}` (an open string union's trick) is a string; anything else is an object.
      const primitive = type.types.find((t) => !(t.flags & ts.TypeFlags.Object));
      if (primitive) {
        if (type.types.some((t) => t !== primitive && checker.getPropertiesOfType(t).length > 0)) {
          throw new Error(`an intersection of a primitive and an object: ${checker.typeToString(type)}`);
        }
        return this.print(primitive, indent);
      }
      return this.object(type, indent, omit);
    }
    if (f & ts.TypeFlags.Object) {
      const name = type.getSymbol()?.name;
      if (name && GLOBAL_TYPES.has(name)) return name;
      if (checker.isArrayType(type)) {
        const element = checker.getTypeArguments(type as ts.TypeReference)[0]!;
        const printed = this.print(element, indent);
        return element.isUnion() && printed.includes(" | ") ? `(${printed})[]` : `${printed}[]`;
      }
      if (checker.isTupleType(type))
        return `[${checker
          .getTypeArguments(type as ts.TypeReference)
          .map((t) => this.print(t, indent))
          .join(", ")}]`;
      if (type.getCallSignatures().length)
        throw new Error(`a function in a request or response: ${checker.typeToString(type)}`);
      return this.object(type, indent, omit);
    }
    throw new Error(`a type this generator does not print: ${checker.typeToString(type)}`);
  }

  private union(types: readonly ts.Type[], indent: string, omit: ReadonlySet<string> | undefined): string {
    let parts = [...new Set(types.map((t) => this.print(t, indent, omit)))];
    if (parts.includes("true") && parts.includes("false"))
      parts = [...parts.filter((p) => p !== "true" && p !== "false"), "boolean"];
    // null and undefined last, as people write them.
    const tail = ["null", "undefined"].filter((p) => parts.includes(p));
    return [...parts.filter((p) => !tail.includes(p)), ...tail].join(" | ");
  }

  private object(type: ts.Type, indent: string, omit: ReadonlySet<string> | undefined): string {
    const { checker } = this;
    const inner = `${indent}  `;
    const members = checker
      .getPropertiesOfType(type)
      .filter((p) => !omit?.has(p.name))
      .map((p) => {
        const optional = p.flags & ts.SymbolFlags.Optional ? "?" : "";
        const key = /^[A-Za-z_$][\w$]*$/.test(p.name) ? p.name : JSON.stringify(p.name);
        return `${key}${optional}: ${this.print(checker.getTypeOfSymbol(p), inner)}`;
      });
    for (const info of checker.getIndexInfosOfType(type)) {
      members.push(`[key: ${checker.typeToString(info.keyType)}]: ${this.print(info.type, inner)}`);
    }
    if (members.length === 0) return "{}";
    const inline = `{ ${members.join("; ")} }`;
    if (inline.length <= 100 && !inline.includes("\n")) return inline;
    return `{\n${members.map((m) => `${inner}${m};`).join("\n")}\n${indent}}`;
  }
}

interface Leaf {
  kind: "leaf";
  text: string;
}
type Tree = Map<string, Tree | Leaf>;

function insert(tree: Tree, path: string[], text: string): void {
  const [head, ...rest] = path;
  if (rest.length === 0) {
    tree.set(head!, { kind: "leaf", text });
    return;
  }
  let child = tree.get(head!);
  if (!child || !(child instanceof Map)) tree.set(head!, (child = new Map()));
  insert(child, rest, text);
}

function render(tree: Tree, indent: string): string {
  const lines: string[] = [];
  for (const [name, node] of tree) {
    if (node instanceof Map) lines.push(`${indent}${name}: {\n${render(node, `${indent}  `)}${indent}};`);
    else lines.push(`${indent}${name}: ${node.text};`);
  }
  return `${lines.join("\n")}\n`;
}

function generate(): string {
  const found = findEndpoints();
  const access = (path: string) =>
    `auth${path
      .split(".")
      .map((s) => `[${JSON.stringify(s)}]`)
      .join("")}`;
  const probe = [
    PROBE,
    ...found.endpoints.map(
      (path, i) =>
        `const endpoint${i} = auth.${path}<{}>;\n` +
        `export type Arg${i} = Parameters<typeof endpoint${i}>;\n` +
        `export type Data${i} = Extract<Awaited<ReturnType<typeof endpoint${i}>>, { error: null }>["data"];`,
    ),
    ...found.atoms.map(
      (path, i) => `export type Atom${i} = NonNullable<ReturnType<${`typeof ${access(path)}`}["get"]>["data"]>;`,
    ),
  ].join("\n");
  const { checker, file } = compile(probe);
  const exported = new Map(checker.getExportsOfModule(checker.getSymbolAtLocation(file)!).map((s) => [s.name, s]));
  const typeOf = (name: string) => checker.getDeclaredTypeOfSymbol(exported.get(name)!);
  const printer = new Printer(checker);

  const tree: Tree = new Map();
  found.endpoints.forEach((path, i) => {
    const args = typeOf(`Arg${i}`) as ts.TypeReference;
    const tuple = args.target as ts.TupleType;
    const optional = Boolean(tuple.elementFlags[0]! & ts.ElementFlags.Optional);
    // The argument without its `fetchOptions` (AuthEndpoint adds ours) and, when optional, without `undefined`.
    let arg = checker.getTypeArguments(args)[0]!;
    if (optional && arg.isUnion()) arg = arg.types.find((t) => !(t.flags & ts.TypeFlags.Undefined))!;
    const argText = printer.print(arg, "  ".repeat(path.split(".").length), FETCH_OPTIONS);
    const data = printer.print(typeOf(`Data${i}`), "  ".repeat(path.split(".").length));
    insert(tree, path.split("."), `${optional ? "OptionalAuthEndpoint" : "AuthEndpoint"}<${argText}, ${data}>`);
  });
  found.atoms.forEach((path, i) => {
    insert(tree, path.split("."), `AuthAtom<AuthQueryState<${printer.print(typeOf(`Atom${i}`), "  ")}>>`);
  });

  const version = (
    JSON.parse(readFileSync(join(root, "node_modules/better-auth/package.json"), "utf8")) as { version: string }
  ).version;
  return `// Generated by packages/client/generate-auth-endpoints.ts from better-auth ${version}'s client with the
// plugins of auth-plugins.ts. Do not edit: run \`node --import tsx packages/client/generate-auth-endpoints.ts\`.
import type { AuthAtom, AuthEndpoint, AuthQueryState, OptionalAuthEndpoint } from "./auth-types.js";

/** better-auth's client endpoints on this server (social sign-in left out: no provider is configured). */
export interface AuthEndpoints {
${render(tree, "  ")}}
`;
}

writeFileSync(target, generate());
console.log(`wrote ${relative(root, target)}`);
