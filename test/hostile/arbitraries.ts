/**
 * fast-check generators of bad requests for one operation of the OpenAPI document.
 *
 * Every generated request is a valid request of the operation (a skeleton built from its schema and
 * the run's fixtures: the actor's own tenant, role, template… ids) with at least one defect that a
 * correct server must refuse — a missing required field, a wrong type, a violated constraint, text
 * that is not valid Unicode or not storable (NUL), an unknown id or another tenant's, a malformed or
 * non-object JSON body, an oversized body, a bad X-Tenant-Id on /api/v1 — plus, sometimes, noise that
 * alone need not be refused (extra fields, a hostile Origin, a tampered cookie, extra query
 * parameters, a wrong Content-Type on better-auth's routes, a chunked body).
 *
 * Soft defects (NUL, lone surrogates, invalid UTF-8, huge strings without a declared maximum) are a
 * sure reason to refuse only in a field the route reads: on better-auth's optional fields (some it
 * ignores, e.g. sign-out's `state`) they are noise, not the request's defect.
 */
import fc from "fast-check";
import type { RawRequest } from "./client.js";
import { typesOf, type JsonSchema, type Operation, type Parameter } from "./openapi.js";

export interface ActorFixture {
  label: "A" | "B";
  user: { id: string; email: string; name: string };
  password: string;
  cookie: string;
  token: string;
  tenantId: string;
  tenantSlug: string;
  roleId: string;
  roleName: string;
  assignmentId: string;
  templateId: string;
  invitationId: string;
  memberId: string;
  /** A real `nextCursor` of the actor's tenant's audit events. */
  cursor: string;
}

export interface Fixtures {
  A: ActorFixture;
  B: ActorFixture;
  /** The trusted browser origin. */
  origin: string;
  /** Body limit of the server (a body above it must get 413). */
  bodyLimitBytes: number;
}

export type Auth = { kind: "none" } | { kind: "cookie" | "bearer"; actor: "A" | "B" };

interface Context {
  op: Operation;
  auth: Auth;
  own: ActorFixture;
  other: ActorFixture;
  fx: Fixtures;
  /** One of our own routes (/api/v1): every declared field is read. */
  ours: boolean;
}

/** A defect or a piece of noise, applied to the skeleton. `sure`: a correct server must refuse it. */
export type Defect =
  | { where: "body-field"; path: string[]; op: "remove"; label: string }
  | { where: "body-field"; path: string[]; op: "set"; value: unknown; label: string }
  | { where: "body"; label: string; bytes: () => Buffer; contentType?: string | null; chunked?: boolean }
  | { where: "content-type"; label: string; contentType: string | null }
  | { where: "extra-fields"; label: string; fields: () => Record<string, unknown> }
  | { where: "query"; label: string; name: string; op: "remove" | "set" | "append"; value?: string }
  | { where: "path"; label: string; name: string; value: string }
  | {
      where: "path-variant";
      label: string;
      variant: "trailing-slash" | "double-slash" | "upper-case" | "dot-segment" | "matrix";
    }
  | { where: "header"; label: string; name: string; value: string | string[] | null }
  | { where: "chunked"; label: string };

export interface Skeleton {
  body?: unknown;
  query: [string, string][];
  path: Record<string, string>;
}

export interface Plan {
  op: Operation;
  auth: Auth;
  defects: Defect[];
  skeleton: Skeleton;
}

// ---------------------------------------------------------------------------------------------
// Raw bytes inside JSON: a string value holding a marker is replaced, after JSON.stringify, by raw
// bytes (invalid UTF-8) or by a bare token (`1e999`, `NaN`, which JSON.stringify cannot produce).

const RAW = (hex: string) => `\uE000${hex}\uE001`;
const TOKEN = (token: string) => `\uE002${token}\uE003`;

/** JSON text of `value` with the markers replaced, as bytes. */
export function jsonBytes(value: unknown): Buffer {
  const text = JSON.stringify(value).replace(/"\uE002([^\uE003]*)\uE003"/g, "$1");
  const parts: Buffer[] = [];
  let last = 0;
  for (const match of text.matchAll(/\uE000([0-9a-f]*)\uE001/g)) {
    parts.push(Buffer.from(text.slice(last, match.index), "utf8"), Buffer.from(match[1]!, "hex"));
    last = match.index! + match[0].length;
  }
  parts.push(Buffer.from(text.slice(last), "utf8"));
  return Buffer.concat(parts);
}

const INVALID_UTF8 = ["ff", "fe", "c328", "c0af", "eda080", "edbfbf", "f88880808080", "e282", "f4908080", "80"];

// ---------------------------------------------------------------------------------------------
// Valid values (the skeleton)

const uniq = fc.integer({ min: 1, max: 2 ** 31 - 1 });

const ID_NAMES = /^(id|.*Id|.*ID|token|sessionToken|memberIdOrEmail|organizationSlug|cursor|roleId|permission)$/;

function namedValue(
  name: string,
  loc: "body" | "query" | "path",
  _schema: JsonSchema,
  ctx: Context,
): fc.Arbitrary<unknown> | undefined {
  const { own, op } = ctx;
  const route = op.path;
  switch (name) {
    case "organizationId":
    case "tenantId":
      return fc.constant(own.tenantId);
    case "organizationSlug":
      return fc.constant(own.tenantSlug);
    case "userId":
      return fc.constant(own.user.id);
    case "memberId":
      return fc.constant(own.memberId);
    case "memberIdOrEmail":
      return fc.constantFrom(own.memberId, own.user.email);
    case "invitationId":
      return fc.constant(own.invitationId);
    case "roleId":
      return fc.constantFrom(own.roleId, own.roleName);
    case "role":
      return route.startsWith("/api/v1/") ? fc.constantFrom(own.roleId, own.roleName) : fc.constant("member");
    case "permission":
      return loc === "path" ? fc.constant("audit:read") : undefined;
    case "permissions":
      return route.startsWith("/api/v1/") ? fc.constant(["audit:read"]) : undefined;
    case "assignmentId":
      return fc.constant(own.assignmentId);
    case "cursor":
      return fc.constant(own.cursor);
    case "email":
      if (/sign-up|invite|create-user|list-user-invitations/.test(route) && !route.includes("list-user-invitations"))
        return uniq.map((n) => `hostile-${n}@example.test`);
      return fc.constant(own.user.email);
    case "newEmail":
      return uniq.map((n) => `hostile-new-${n}@example.test`);
    case "password":
    case "currentPassword":
      // The right password half of the time: deep enough to reach the code behind it, but a request
      // that should have been refused and was not cannot then always change the fixture.
      return fc.constantFrom(own.password, "not the password 42");
    case "newPassword":
      return fc.constant("a new password 12345");
    case "token":
    case "sessionToken":
      if (route.includes("revoke-session") || route.includes("revoke-user-session")) return fc.constant(own.token);
      return fc.string({
        unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789"),
        minLength: 24,
        maxLength: 40,
      });
    case "name":
      return uniq.map((n) => `Hostile ${n}`);
    case "slug":
      return uniq.map((n) => `hostile-${n}`);
    case "key":
      return fc.constant("welcome");
    case "locale":
      // Not "en": the fixture's own override of `welcome` is in English, and a clash would be a 409.
      return fc.constantFrom("de", "fr", "it", "nl-BE");
    case "subject":
    case "html":
    case "text":
      return fc.constant("Hello {{name}}");
    case "scope":
      return fc.constant("tenant");
    case "format":
      return fc.constant("ndjson");
    case "limit":
      return loc === "query" ? fc.constant("10") : undefined;
    case "callbackURL":
    case "errorCallbackURL":
    case "newUserCallbackURL":
      return fc.constant("/");
    case "category":
      return fc.constantFrom("product", "marketing", "digest");
    case "provider":
      return fc.constant("github");
    case "parents":
    case "inherits":
      return fc.constant([]);
    case "id":
      if (route.includes("/email/templates")) return fc.constant(own.templateId);
      if (route.includes("invitation")) return fc.constant(own.invitationId);
      if (route.includes("/callback/")) return fc.constant("github");
      if (route.includes("admin/get-user")) return fc.constant(own.user.id);
      return fc.uuid({ version: 4 });
    default:
      return undefined;
  }
}

function validBySchema(schema: JsonSchema, depth: number, ctx: Context): fc.Arbitrary<unknown> {
  if (schema.enum?.length) return fc.constantFrom(...schema.enum);
  if (schema.const !== undefined) return fc.constant(schema.const);
  const branches = schema.anyOf ?? schema.oneOf;
  if (branches?.length) {
    const usable = branches.filter((b) => b.type !== "null");
    return validValue(usable[0] ?? branches[0]!, "", depth, ctx, "body");
  }
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  switch (type) {
    case "string": {
      if (schema.format === "uuid") return fc.uuid({ version: 4 });
      if (schema.format === "email") return uniq.map((n) => `hostile-${n}@example.test`);
      if (schema.format === "date-time") return fc.constant(new Date(Date.UTC(2026, 0, 1)).toISOString());
      if (typeof schema.example === "string") return fc.constant(schema.example);
      const min = schema.minLength ?? 1;
      const max = Math.max(min, Math.min(schema.maxLength ?? 20, 20));
      return fc.string({ unit: fc.constantFrom(..."abcdefghij"), minLength: min, maxLength: max });
    }
    case "integer":
    case "number": {
      const min = typeof schema.minimum === "number" ? schema.minimum : 0;
      const max = typeof schema.maximum === "number" ? Math.min(schema.maximum, min + 100) : min + 100;
      return fc.integer({ min: Math.ceil(min), max: Math.floor(max) });
    }
    case "boolean":
      return fc.boolean();
    case "array":
      if ((schema.minItems ?? 0) > 0 && schema.items)
        return validValue(schema.items, "", depth + 1, ctx, "body").map((v) => [v]);
      return fc.constant([]);
    case "object":
      return validObject(schema, depth + 1, ctx);
    default:
      return fc.constant("hostile");
  }
}

function validValue(
  schema: JsonSchema,
  name: string,
  depth: number,
  ctx: Context,
  loc: "body" | "query" | "path",
): fc.Arbitrary<unknown> {
  return namedValue(name, loc, schema, ctx) ?? validBySchema(schema, depth, ctx);
}

function objectBranch(schema: JsonSchema): JsonSchema {
  if (schema.properties || schema.type === "object") return schema;
  const branches = schema.anyOf ?? schema.oneOf;
  return branches?.find((b) => b.properties) ?? schema;
}

function validObject(schema: JsonSchema, depth: number, ctx: Context): fc.Arbitrary<Record<string, unknown>> {
  const s = objectBranch(schema);
  const required = new Set(s.required ?? []);
  const entries = Object.entries(s.properties ?? {}).filter(() => depth < 4);
  const record: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [key, prop] of entries) {
    const value = validValue(prop, key, depth, ctx, "body");
    // Optional fields are present half of the time.
    record[key] = required.has(key) ? value : fc.option(value, { nil: undefined, freq: 2 });
  }
  return fc.record(record).map((o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)));
}

// ---------------------------------------------------------------------------------------------
// Bad values

const HUGE = 200_000;
const huge = (n = HUGE) => "x".repeat(n);
const nestedArrays = (depth: number): string => "[".repeat(depth) + "]".repeat(depth);
const nestedObjects = (depth: number): string => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;

interface Bad {
  value: unknown;
  label: string;
}

/** Values of a JSON type the schema does not admit. */
function wrongTypes(schema: JsonSchema): Bad[] {
  const types = typesOf(schema);
  if (!types) return [];
  const candidates: [string, Bad[]][] = [
    [
      "string",
      [
        { value: "hostile", label: "a string" },
        { value: "", label: "an empty string" },
      ],
    ],
    [
      "number",
      [
        { value: 0, label: "a number" },
        { value: -1, label: "a negative number" },
        { value: TOKEN("1e999"), label: "1e999 (Infinity)" },
      ],
    ],
    ["boolean", [{ value: true, label: "a boolean" }]],
    ["null", [{ value: null, label: "null" }]],
    [
      "array",
      [
        { value: ["hostile"], label: "an array" },
        { value: [], label: "an empty array" },
      ],
    ],
    [
      "object",
      [
        { value: { $ne: null }, label: 'an object {"$ne":null}' },
        { value: {}, label: "an empty object" },
      ],
    ],
  ];
  return candidates
    .filter(([t]) => !types.has(t) && !(t === "number" && types.has("integer")))
    .flatMap(([, bad]) => bad);
}

/** Values breaking a declared constraint. */
function constraintViolations(schema: JsonSchema): Bad[] {
  const out: Bad[] = [];
  const types = typesOf(schema);
  if (schema.format === "uuid") {
    out.push(
      { value: "not-a-uuid", label: "not a uuid" },
      { value: "00000000-0000-0000-0000-00000000000g", label: "a uuid with a non-hex digit" },
    );
  }
  if (schema.format === "email") out.push({ value: "not an email", label: "not an email" });
  if (schema.format === "date-time") {
    out.push(
      { value: "2026-13-45T25:61:61Z", label: "an impossible date-time" },
      { value: "yesterday", label: "not a date-time" },
    );
  }
  if (schema.enum?.length) out.push({ value: "not-in-the-enum", label: "a value outside the enum" });
  if (schema.pattern) {
    // A value that really breaks the pattern: a fixed one matched ^[^\r\n]*$ and made a valid request.
    const pattern = new RegExp(schema.pattern, "u");
    const breaking = ["!!! \u00e9 <script>", "line\r\nbreak", ""].find((candidate) => !pattern.test(candidate));
    if (breaking !== undefined) out.push({ value: breaking, label: `a string not matching ${schema.pattern}` });
  }
  if (typeof schema.maxLength === "number")
    out.push({
      value: huge(schema.maxLength + 1),
      label: `${schema.maxLength + 1} characters (max ${schema.maxLength})`,
    });
  if ((schema.minLength ?? 0) > 0) out.push({ value: "", label: `an empty string (min ${schema.minLength})` });
  if (typeof schema.maximum === "number")
    out.push({ value: schema.maximum + 1, label: `maximum + 1 (${schema.maximum + 1})` });
  if (typeof schema.minimum === "number")
    out.push({ value: schema.minimum - 1, label: `minimum - 1 (${schema.minimum - 1})` });
  if (schema.type === "integer") out.push({ value: 1.5, label: "a fraction for an integer" });
  if (typeof schema.maxItems === "number" && schema.items) {
    out.push({
      value: Array.from({ length: schema.maxItems + 1 }, (_, i) => `item-${i}`),
      label: `${schema.maxItems + 1} items (max ${schema.maxItems})`,
    });
  }
  if ((schema.minItems ?? 0) > 0) out.push({ value: [], label: `no items (min ${schema.minItems})` });
  if (schema.items && types?.has("array")) {
    for (const bad of wrongTypes(schema.items).slice(0, 2))
      out.push({ value: [bad.value], label: `an array holding ${bad.label}` });
  }
  return out;
}

/** Strings that are not valid Unicode, or that PostgreSQL cannot store. */
function softStrings(): Bad[] {
  return [
    { value: "a\u0000b", label: "a NUL character" },
    { value: "\u0000", label: "only a NUL character" },
    { value: "\ud800", label: "a lone high surrogate (\\ud800)" },
    { value: "x\udfffy", label: "a lone low surrogate (\\udfff)" },
    { value: "\udc00\ud800", label: "reversed surrogates" },
    ...INVALID_UTF8.map((hex) => ({ value: `a${RAW(hex)}b`, label: `invalid UTF-8 bytes 0x${hex}` })),
  ];
}

function idSwaps(name: string, ctx: Context): Bad[] {
  const { other } = ctx;
  const others: Record<string, string[]> = {
    organizationId: [other.tenantId],
    tenantId: [other.tenantId],
    organizationSlug: [other.tenantSlug],
    userId: [other.user.id],
    memberId: [other.memberId],
    memberIdOrEmail: [other.memberId, other.user.email],
    invitationId: [other.invitationId],
    roleId: [other.roleId, other.roleName],
    role: ctx.ours ? [other.roleId, other.roleName] : ["owner", "admin"],
    assignmentId: [other.assignmentId],
    cursor: [other.cursor],
    token: [other.token],
    sessionToken: [other.token],
    id: [other.templateId, other.invitationId, other.user.id, other.tenantId],
    permission: ["*", "roles:write"],
  };
  return [
    ...(others[name] ?? []).map((value) => ({ value, label: `another tenant's ${name} (${value.slice(0, 40)})` })),
    { value: "00000000-0000-4000-8000-000000000000", label: "an unknown uuid" },
    { value: "' or '1'='1", label: "an SQL-looking string" },
    { value: "../../../../etc/passwd", label: "a path traversal" },
  ];
}

function tamperedCursors(own: ActorFixture): Bad[] {
  // An audit cursor is the platform's merged-page cursor: [[occurredAt, id], place rank].
  const decoded = JSON.parse(Buffer.from(own.cursor, "base64url").toString("utf8")) as [[string, string], number];
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const [[at, id], rank] = decoded;
  return [
    { value: enc([[at, "9999999999999999999"], rank]), label: "a cursor whose id overflows bigint" },
    { value: enc([[at.replace(/^\d{4}-\d{2}/, "2026-13"), id], rank]), label: "a cursor with month 13" },
    { value: enc([[at.replace(/T\d{2}/, "T25"), id], rank]), label: "a cursor with hour 25" },
    { value: enc([["0000-01-01T00:00:00.000000Z", id], rank]), label: "a cursor at year 0" },
    { value: enc([[at, "-1"], rank]), label: "a cursor with a negative id" },
    { value: enc([[at, id], 99]), label: "a cursor naming an unknown database" },
    { value: enc([[at, id], -1]), label: "a cursor naming a negative database rank" },
    { value: enc([[at, id], rank, "x"]), label: "a cursor with an extra element" },
    { value: enc([[at, id, "x"], rank]), label: "a cursor whose key has an extra element" },
    { value: enc([at, id]), label: "a cursor without its database rank" },
    { value: enc({ at, id }), label: "a cursor that is an object" },
    { value: enc([[at, id]]), label: "a cursor with one element" },
    { value: own.cursor.slice(0, -3), label: "a truncated cursor" },
    {
      value: own.cursor.replace(/[A-Za-z]/, (c) => (c === "A" ? "B" : "A")),
      label: "a cursor with a flipped character",
    },
    { value: "!!!notbase64!!!", label: "a cursor that is not base64url" },
    { value: `${Buffer.from("\u0000\u0000").toString("base64url")}AAAA`, label: "a cursor of NUL bytes" },
  ];
}

// ---------------------------------------------------------------------------------------------
// Targets: where a defect goes

interface FieldTarget {
  path: string[];
  name: string;
  schema: JsonSchema;
  required: boolean;
}

function bodyFields(schema: JsonSchema, prefix: string[] = [], depth = 0): FieldTarget[] {
  const s = objectBranch(schema);
  const required = new Set(s.required ?? []);
  const out: FieldTarget[] = [];
  for (const [name, prop] of Object.entries(s.properties ?? {})) {
    const path = [...prefix, name];
    out.push({ path, name, schema: prop, required: required.has(name) });
    if (depth < 2 && prop.properties) out.push(...bodyFields(prop, path, depth + 1));
  }
  return out;
}

const isString = (schema: JsonSchema) => typesOf(schema)?.has("string") ?? false;

function fieldDefects(field: FieldTarget, ctx: Context): fc.Arbitrary<Defect>[] {
  const sure: Bad[] = [...wrongTypes(field.schema), ...constraintViolations(field.schema)];
  if (isString(field.schema) && (ctx.ours || field.required)) sure.push(...softStrings());
  // An id the route reads: better-auth ignores some optional ones (teamId without teams).
  const readsId = field.required || ctx.ours || ["organizationId", "organizationSlug"].includes(field.name);
  if (readsId && (ID_NAMES.test(field.name) || ["role", "userId", "organizationId"].includes(field.name)))
    sure.push(...idSwaps(field.name, ctx));
  const defects: fc.Arbitrary<Defect>[] = [];
  const where = field.path.join(".");
  if (sure.length) {
    defects.push(
      fc.constantFrom(...sure).map(
        (bad): Defect => ({
          where: "body-field",
          path: field.path,
          op: "set",
          value: bad.value,
          label: `body ${where}: ${bad.label}`,
        }),
      ),
    );
    // Nesting deep enough to break a recursive walker, where the field admits no array.
    if (!typesOf(field.schema)?.has("array")) {
      defects.push(
        fc.constantFrom(5_000, 50_000).map(
          (depth): Defect => ({
            where: "body-field",
            path: field.path,
            op: "set",
            value: TOKEN(nestedArrays(depth)),
            label: `body ${where}: arrays nested ${depth} deep`,
          }),
        ),
      );
    }
  }
  if (field.required)
    defects.push(
      fc.constant<Defect>({
        where: "body-field",
        path: field.path,
        op: "remove",
        label: `body ${where}: missing (required)`,
      }),
    );
  return defects;
}

/** Noise in a field: a soft value where it need not be refused. */
function fieldNoise(field: FieldTarget): fc.Arbitrary<Defect> | undefined {
  if (!isString(field.schema)) return undefined;
  const bad = [...softStrings(), { value: huge(), label: `${HUGE} characters` }];
  return fc.constantFrom(...bad).map(
    (b): Defect => ({
      where: "body-field",
      path: field.path,
      op: "set",
      value: b.value,
      label: `body ${field.path.join(".")}: ${b.label} (noise)`,
    }),
  );
}

const MALFORMED = [
  "{",
  '{"a":}',
  '{"name":"x",}',
  "{'name':'x'}",
  '{"name":"x"} trailing',
  "[1,2",
  "nul",
  '{"a":"\\x"}',
  '{"a":"unterminated',
  '{"a":"raw\nnewline"}',
  '{"a":1,"a":2',
  "\u00ef\u00bb\u00bf{}",
  "{}{}",
  "/* comment */ {}",
];
const NON_OBJECT = ["[]", '"a string"', "42", "null", "true", '[{"name":"x"}]'];

function bodyDefects(ctx: Context, sureOnly: boolean): fc.Arbitrary<Defect>[] {
  const op = ctx.op;
  const body = op.body;
  const out: fc.Arbitrary<Defect>[] = [];
  const hasRequired = (objectBranch(body?.schema ?? {}).required?.length ?? 0) > 0;
  if (body) {
    out.push(
      fc.constantFrom(...MALFORMED).map(
        (text): Defect => ({
          where: "body",
          label: `malformed JSON ${JSON.stringify(text)}`,
          bytes: () => Buffer.from(text, "latin1"),
        }),
      ),
      fc.constantFrom(...NON_OBJECT).map(
        (text): Defect => ({
          where: "body",
          label: `a JSON body that is not an object: ${text}`,
          bytes: () => Buffer.from(text),
        }),
      ),
      fc.constantFrom(10_000, 100_000).map(
        (depth): Defect => ({
          where: "body",
          label: `a body of arrays nested ${depth} deep`,
          bytes: () => Buffer.from(nestedArrays(depth)),
        }),
      ),
      fc.constantFrom(...INVALID_UTF8).map(
        (hex): Defect => ({
          where: "body",
          label: `invalid UTF-8 (0x${hex}) outside any string: {<bytes>}`,
          bytes: () => Buffer.concat([Buffer.from("{"), Buffer.from(hex, "hex"), Buffer.from("}")]),
        }),
      ),
    );
    if (hasRequired || body.required) {
      out.push(
        fc.constant<Defect>({
          where: "body",
          label: "an empty body (Content-Type: application/json)",
          bytes: () => Buffer.alloc(0),
        }),
      );
    }
    if (ctx.ours && body.required) {
      out.push(
        fc
          .constantFrom(
            null,
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/xml",
            "application/octet-stream",
          )
          .map(
            (contentType): Defect => ({
              where: "content-type",
              label: `a valid JSON body sent as ${contentType ?? "no Content-Type"}`,
              contentType,
            }),
          ),
      );
    }
  }
  // Above the body limit: always refused (413), whatever the route.
  if (op.method !== "GET" && op.method !== "DELETE") out.push(oversized(ctx));
  if (!sureOnly && body) {
    out.push(
      fc.constant<Defect>({
        where: "body",
        label: `objects nested 20000 deep`,
        bytes: () => Buffer.from(nestedObjects(20_000)),
      }),
    );
  }
  return out;
}

const OVERSIZED = Symbol("oversized");
/** Noise that takes the request away from the route or its session: drawn less often. */
const RARE = Symbol("rare");
/** Defects worth more draws (tampered cursors: few routes have one, and it was a known 500). */
const FAVOURED = Symbol("favoured");
const rare = <T>(arbitrary: fc.Arbitrary<T>) => Object.assign(arbitrary, { [RARE]: true });

/** A body above the limit, with Content-Length or chunked; marked, to be drawn less often. */
function oversized(ctx: Context): fc.Arbitrary<Defect> {
  const size = ctx.fx.bodyLimitBytes + 65_536;
  const arbitrary = fc.constantFrom(false, true).map(
    (chunked): Defect => ({
      where: "body",
      label: `a body of ${size} bytes (over the limit${chunked ? ", chunked" : ""})`,
      bytes: () => Buffer.from(`{"name":"${huge(size - 11)}"}`),
      chunked,
    }),
  );
  return Object.assign(arbitrary, { [OVERSIZED]: true });
}

function paramValues(p: Parameter, ctx: Context): Bad[] {
  const bad: Bad[] = [];
  // Query and path values are text: wrong "types" are words where numbers, booleans or enums go.
  const types = typesOf(p.schema);
  if (types && !types.has("string"))
    bad.push({ value: "abc", label: "not a number/boolean" }, { value: "", label: "empty" });
  for (const v of constraintViolations(p.schema))
    if (typeof v.value === "string" || typeof v.value === "number") bad.push(v);
  if (ID_NAMES.test(p.name) || p.name === "userId" || p.name === "tenantId") bad.push(...idSwaps(p.name, ctx));
  if (p.name === "cursor") bad.push(...tamperedCursors(ctx.own));
  return bad;
}

/** Percent-encoded (or raw latin1) text that is not valid or storable once decoded. */
const ODD_ENCODED: Bad[] = [
  { value: "%00", label: "%00 (NUL)" },
  { value: "a%00b", label: "a%00b (NUL inside)" },
  { value: "%FF", label: "%FF (invalid UTF-8)" },
  { value: "%C0%AF", label: "%C0%AF (overlong UTF-8)" },
  { value: "%ED%A0%80", label: "%ED%A0%80 (an encoded surrogate)" },
  { value: "\u00ff\u00fe", label: "raw bytes 0xff 0xfe" },
  { value: "%", label: "a lone %" },
  { value: "%zz", label: "%zz (bad percent-encoding)" },
  { value: "%F0%9F%98%80", label: "an emoji" },
  { value: "..", label: ".." },
  { value: "%2e%2e", label: "%2e%2e" },
  { value: "a%2Fb", label: "an encoded slash" },
  { value: "%20", label: "a space" },
  { value: "x".repeat(5_000), label: "5000 characters" },
  { value: "*", label: "*" },
  { value: "%27%20or%201%3D1--", label: "an SQL-looking string" },
];

const enc = (v: unknown) => encodeURIComponent(typeof v === "string" ? v : JSON.stringify(v));
const urlText = (bad: Bad) => (typeof bad.value === "string" ? enc(bad.value) : enc(String(bad.value)));

function queryDefects(ctx: Context, sure: boolean): fc.Arbitrary<Defect>[] {
  const out: fc.Arbitrary<Defect>[] = [];
  for (const p of ctx.op.query) {
    // A read is harmless whatever it ignores; elsewhere only a parameter the route reads is a defect.
    const read = ctx.ours || p.required || ctx.op.method === "GET";
    if (sure && !read) continue;
    const values = paramValues(p, ctx);
    if (values.length) {
      const arbitrary = fc.constantFrom(...values).map(
        (b): Defect => ({
          where: "query",
          label: `query ${p.name}: ${b.label}`,
          name: p.name,
          op: "set",
          value: urlText(b),
        }),
      );
      out.push(p.name === "cursor" ? Object.assign(arbitrary, { [FAVOURED]: true }) : arbitrary);
    }
    if (isString(p.schema)) {
      out.push(
        fc.constantFrom(...ODD_ENCODED).map(
          (b): Defect => ({
            where: "query",
            label: `query ${p.name}: ${b.label}`,
            name: p.name,
            op: "set",
            value: String(b.value),
          }),
        ),
      );
    }
    if (p.required)
      out.push(
        fc.constant<Defect>({
          where: "query",
          label: `query ${p.name}: missing (required)`,
          name: p.name,
          op: "remove",
        }),
      );
    if (ctx.ours)
      out.push(
        fc.constant<Defect>({
          where: "query",
          label: `query ${p.name}: given twice`,
          name: p.name,
          op: "append",
          value: "x",
        }),
      );
  }
  return out;
}

function pathDefects(ctx: Context): fc.Arbitrary<Defect>[] {
  return ctx.op.pathParams.map((p) => {
    const values = [
      ...paramValues(p, ctx).map((b) => ({ value: urlText(b), label: b.label })),
      ...ODD_ENCODED.map((b) => ({ value: String(b.value), label: b.label })),
    ];
    return fc
      .constantFrom(...values)
      .map((b): Defect => ({ where: "path", label: `path {${p.name}}: ${b.label}`, name: p.name, value: b.value }));
  });
}

function tenantHeaderDefects(ctx: Context): fc.Arbitrary<Defect> {
  const values: [string | string[], string][] = [
    [ctx.other.tenantId, "another tenant's id"],
    ["00000000-0000-4000-8000-000000000000", "an unknown tenant id"],
    ["not-a-uuid", "not a uuid"],
    ["", "empty"],
    [[ctx.own.tenantId, ctx.other.tenantId], "given twice (own, then another tenant's)"],
    ["\u00ff\u00fe", "raw bytes 0xff 0xfe"],
    ["x".repeat(8_000), "8000 characters"],
    [`${ctx.own.tenantId}\u00a0`, "own tenant id and a latin1 no-break space"],
    [`${ctx.own.tenantId},${ctx.other.tenantId}`, "two ids in one value"],
  ];
  return fc
    .constantFrom(...values)
    .map(([value, label]): Defect => ({ where: "header", name: "x-tenant-id", value, label: `X-Tenant-Id: ${label}` }));
}

function noise(ctx: Context): fc.Arbitrary<Defect>[] {
  const out: fc.Arbitrary<Defect>[] = [
    rare(
      fc
        .constantFrom<[string, string]>(
          ["https://evil.example", "an untrusted Origin"],
          ["null", "Origin: null"],
          ["http://localhost:3000.evil.example", "an Origin extending the trusted one"],
        )
        .map(([value, label]): Defect => ({ where: "header", name: "origin", value, label })),
    ),
    rare(
      fc
        .constantFrom(
          "Bearer not-a-token",
          "Bearer ",
          `Bearer ${ctx.other.token}x`,
          "Basic YWRtaW46YWRtaW4=",
          `Bearer ${"A".repeat(6_000)}`,
        )
        .map(
          (value): Defect => ({
            where: "header",
            name: "authorization",
            value,
            label: `Authorization: ${value.slice(0, 30)}`,
          }),
        ),
    ),
    rare(
      fc
        .constantFrom(
          `sv.session_token=${ctx.own.token.slice(0, -2)}xx`,
          `sv.session_token=${"%00".repeat(10)}`,
          `sv.session_data=${"e".repeat(4_000)}`,
          `${ctx.own.cookie}; ${ctx.other.cookie}`,
        )
        .map(
          (value): Defect => ({ where: "header", name: "cookie", value, label: `a tampered or conflicting Cookie` }),
        ),
    ),
    fc
      .constantFrom("1.2.3.4", "127.0.0.1, 10.0.0.1")
      .map(
        (value): Defect => ({ where: "header", name: "x-forwarded-for", value, label: `X-Forwarded-For: ${value}` }),
      ),
    fc.constant<Defect>({ where: "chunked", label: "the body chunked" }),
    rare(
      fc.constantFrom("trailing-slash", "double-slash", "upper-case", "dot-segment", "matrix").map(
        (variant): Defect => ({
          where: "path-variant",
          label: `path variant: ${variant}`,
          variant: variant as "trailing-slash",
        }),
      ),
    ),
    fc
      .constantFrom(["__proto__", "%00"], ["constructor[prototype][x]", "1"], ["x", "%FF"], ["a".repeat(2_000), "b"])
      .map(
        ([name, value]): Defect => ({
          where: "query",
          label: `extra query parameter ${name.slice(0, 30)}=${value}`,
          name: name!,
          op: "append",
          value,
        }),
      ),
  ];
  if (!ctx.ours && ctx.op.method !== "GET") out.push(...queryDefects(ctx, false));
  if (ctx.op.body) {
    out.push(
      fc
        .constantFrom<[string, () => Record<string, unknown>]>(
          [
            "__proto__ with a polluting field",
            () => JSON.parse('{"__proto__":{"polluted":true,"role":"admin"}}') as Record<string, unknown>,
          ],
          ["constructor.prototype", () => ({ constructor: { prototype: { polluted: true } } })],
          [
            "unknown fields",
            () => ({
              isAdmin: true,
              role: "owner",
              tenantId: ctx.other.tenantId,
              emailVerified: true,
              id: ctx.other.user.id,
            }),
          ],
          ["2000 unknown fields", () => Object.fromEntries(Array.from({ length: 2_000 }, (_, i) => [`f${i}`, i]))],
        )
        .map(([label, fields]): Defect => ({ where: "extra-fields", label: `extra fields: ${label}`, fields })),
    );
    for (const field of bodyFields(ctx.op.body.schema)) {
      const n = fieldNoise(field);
      if (n) out.push(n);
    }
    if (!ctx.ours) {
      out.push(
        fc
          .constantFrom(
            null,
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/xml",
            "application/json; charset=latin1",
          )
          .map(
            (contentType): Defect => ({
              where: "content-type",
              label: `Content-Type: ${contentType ?? "(none)"}`,
              contentType,
            }),
          ),
      );
    }
  }
  if (ctx.op.method === "GET") {
    out.push(
      fc.constant<Defect>({ where: "body", label: "a GET with a JSON body", bytes: () => Buffer.from('{"a":1}') }),
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

const AUTHS: Auth[] = [
  { kind: "none" },
  { kind: "cookie", actor: "A" },
  { kind: "bearer", actor: "A" },
  { kind: "cookie", actor: "B" },
  { kind: "bearer", actor: "B" },
];

/** The sure defects of an operation for an authentication (empty when the operation takes no input). */
function sureDefects(ctx: Context): fc.Arbitrary<Defect>[] {
  const out: fc.Arbitrary<Defect>[] = [];
  if (ctx.op.body) for (const field of bodyFields(ctx.op.body.schema)) out.push(...fieldDefects(field, ctx));
  out.push(...bodyDefects(ctx, true), ...queryDefects(ctx, true), ...pathDefects(ctx));
  if (ctx.ours && ctx.auth.kind !== "none") out.push(tenantHeaderDefects(ctx));
  return out;
}

/** Bad requests for one operation. */
export function badRequests(op: Operation, fx: Fixtures): fc.Arbitrary<Plan> {
  // One generator per authentication, built once (building them allocates the big values).
  const perAuth = new Map<Auth, fc.Arbitrary<Plan>>();
  return fc.constantFrom(...AUTHS).chain((auth) => {
    let built = perAuth.get(auth);
    if (!built) perAuth.set(auth, (built = forAuth(op, fx, auth)));
    return built;
  });
}

function forAuth(op: Operation, fx: Fixtures, auth: Auth): fc.Arbitrary<Plan> {
  const own = auth.kind === "none" || auth.actor === "A" ? fx.A : fx.B;
  const other = own === fx.A ? fx.B : fx.A;
  const ctx: Context = { op, auth, own, other, fx, ours: op.path.startsWith("/api/v1/") };
  const skeleton = fc.record({
    body: op.body ? validObject(op.body.schema, 0, ctx) : fc.constant(undefined),
    query: fc.tuple(
      ...op.query.map((p) =>
        p.required
          ? validValue(p.schema, p.name, 0, ctx, "query").map(
              (v) => [p.name, String(v)] as [string, string] | undefined,
            )
          : fc.constant(undefined),
      ),
    ),
    path: fc.record(
      Object.fromEntries(op.pathParams.map((p) => [p.name, validValue(p.schema, p.name, 0, ctx, "path").map(String)])),
    ),
  });
  const sure = sureDefects(ctx);
  const extra = noise(ctx).map((arbitrary) => ({ arbitrary, weight: RARE in arbitrary ? 1 : 3 }));
  // Oversized bodies (1.1 MB each) are about one draw in ten, whatever else the route offers.
  const others = Math.max(1, sure.filter((a) => !(OVERSIZED in a)).length);
  const base = Math.max(1, Math.round(9 / others));
  const weighted = sure.map((arbitrary) => ({
    arbitrary,
    weight: OVERSIZED in arbitrary ? 1 : FAVOURED in arbitrary ? base * 12 : base,
  }));
  const primary = sure.length ? fc.oneof(...weighted) : fc.constant(undefined);
  return fc
    .tuple(
      skeleton,
      primary,
      // Noise: none half of the time, so that most requests show their defect to the route itself.
      fc.oneof(
        { arbitrary: fc.constant([] as Defect[]), weight: sure.length ? 3 : 0 },
        { arbitrary: fc.array(fc.oneof(...extra), { minLength: 1, maxLength: 2 }), weight: 3 },
      ),
      // A second defect a third of the time.
      fc.oneof(
        { arbitrary: fc.constant(undefined), weight: 2 },
        { arbitrary: sure.length ? fc.oneof(...weighted) : fc.oneof(...extra), weight: 1 },
      ),
    )
    .map(([s, first, noises, second]) => ({
      op,
      auth,
      skeleton: {
        body: s.body,
        query: s.query.filter((q): q is [string, string] => q !== undefined),
        path: s.path as Record<string, string>,
      },
      // Later defects win where they touch the same spot: none may undo the first one.
      defects: [
        first,
        ...[second, ...noises].filter((d) => d && (!first || !overlaps(targetOf(d), targetOf(first)))),
      ].filter((d): d is Defect => d !== undefined && d !== null),
    }));
}

/** Whether two spots overlap: the whole body covers each of its fields. */
const overlaps = (a: string, b: string) =>
  a === b || (a === "body" && b.startsWith("body:")) || (b === "body" && a.startsWith("body:"));

/** The spot a defect changes: two defects of one spot would overwrite each other. */
function targetOf(d: Defect): string {
  switch (d.where) {
    case "body-field":
      return `body:${d.path.join(".")}`;
    case "query":
    case "path":
      return `${d.where}:${d.name}`;
    case "header":
      return `header:${d.name}`;
    case "body":
    case "content-type":
    case "chunked":
      return "body";
    default:
      return d.where;
  }
}

// ---------------------------------------------------------------------------------------------
// From a plan to bytes

function setAt(target: Record<string, unknown>, path: string[], value: unknown, remove: boolean): void {
  let node: Record<string, unknown> = target;
  for (const key of path.slice(0, -1)) {
    if (typeof node[key] !== "object" || node[key] === null || Array.isArray(node[key])) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  const last = path[path.length - 1]!;
  if (remove) delete node[last];
  else node[last] = value;
}

export interface Built {
  request: RawRequest;
  /** Credentials replaced by names, for reports. */
  describeHeaders: Record<string, string | string[]>;
}

export function buildRequest(plan: Plan, fx: Fixtures): Built {
  const { op, auth, defects, skeleton } = plan;
  const actor = auth.kind === "none" ? undefined : fx[auth.actor];

  let path = op.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const d = defects.find((x): x is Extract<Defect, { where: "path" }> => x.where === "path" && x.name === name);
    return d ? d.value : encodeURIComponent(skeleton.path[name] ?? "x");
  });
  for (const d of defects) {
    if (d.where !== "path-variant") continue;
    if (d.variant === "trailing-slash") path += "/";
    else if (d.variant === "double-slash") path = path.replace("/api/", "/api//");
    else if (d.variant === "upper-case") path = path.replace("/api/", "/API/");
    else if (d.variant === "dot-segment") path = path.replace("/api/", "/api/./");
    else path += ";jsessionid=1";
  }

  let query = skeleton.query.map(([k, v]) => [encodeURIComponent(k), encodeURIComponent(v)] as [string, string]);
  for (const d of defects) {
    if (d.where !== "query") continue;
    const key = encodeURIComponent(d.name);
    if (d.op === "remove") query = query.filter(([k]) => k !== key);
    else if (d.op === "set") query = [...query.filter(([k]) => k !== key), [key, d.value ?? ""]];
    else query.push([key, d.value ?? ""]);
  }
  if (query.length) path += `?${query.map(([k, v]) => `${k}=${v}`).join("&")}`;

  const headers: Record<string, string | string[]> = {
    accept: "application/json",
    "user-agent": "sv-sdk-hostile-input-test",
  };
  const described: Record<string, string | string[]> = { ...headers };
  if (actor && auth.kind === "cookie") {
    headers.cookie = actor.cookie;
    headers.origin = fx.origin;
    described.cookie = `<${actor.label}'s session cookie>`;
    described.origin = fx.origin;
  } else if (actor && auth.kind === "bearer") {
    headers.authorization = `Bearer ${actor.token}`;
    described.authorization = `Bearer <${actor.label}'s session token>`;
  }
  // A signed-in client of /api/v1 names the tenant it acts in (defects replace or drop it).
  if (actor && op.path.startsWith("/api/v1/")) headers["x-tenant-id"] = described["x-tenant-id"] = actor.tenantId;

  let body: Buffer | undefined;
  let contentType: string | null | undefined;
  let chunked = false;
  if (op.body && skeleton.body !== undefined) {
    const value = structuredClone(skeleton.body) as Record<string, unknown>;
    // Extra fields add what the operation does not declare: a "role" among them once replaced a field's
    // defect with a valid role and made the request valid (seed 349242274).
    for (const d of defects) {
      if (d.where !== "extra-fields") continue;
      for (const [key, field] of Object.entries(d.fields())) if (!Object.hasOwn(value, key)) value[key] = field;
    }
    for (const d of defects) {
      if (d.where === "body-field") setAt(value, d.path, d.op === "set" ? d.value : undefined, d.op === "remove");
    }
    // Object.assign does not copy an own "__proto__" key as a property: set it explicitly.
    for (const d of defects) {
      if (d.where === "extra-fields") {
        const fields = d.fields();
        if (Object.hasOwn(fields, "__proto__")) {
          Object.defineProperty(value, "__proto__", {
            // biome-ignore lint/suspicious/noProto: an own "__proto__" key is the hostile input under test
            value: fields.__proto__,
            enumerable: true,
            configurable: true,
            writable: true,
          });
        }
      }
    }
    body = jsonBytes(value);
    contentType = "application/json";
  }
  for (const d of defects) {
    if (d.where === "body") {
      body = d.bytes();
      contentType = d.contentType === undefined ? "application/json" : d.contentType;
      chunked ||= d.chunked ?? false;
    }
    if (d.where === "content-type") contentType = d.contentType;
    if (d.where === "chunked") chunked = true;
  }
  if (contentType && body) headers["content-type"] = described["content-type"] = contentType;

  for (const d of defects) {
    if (d.where !== "header") continue;
    if (d.value === null) {
      delete headers[d.name];
      delete described[d.name];
    } else {
      headers[d.name] = d.value;
      described[d.name] = redact(d.value, fx);
    }
  }
  return {
    request: { method: op.method, path, headers, body, chunked: chunked && body !== undefined },
    describeHeaders: described,
  };
}

function redact(value: string | string[], fx: Fixtures): string | string[] {
  if (Array.isArray(value)) return value.map((v) => redact(v, fx) as string);
  let out = value;
  for (const actor of [fx.A, fx.B]) {
    out = out
      .split(actor.cookie)
      .join(`<${actor.label}'s session cookie>`)
      .split(actor.token)
      .join(`<${actor.label}'s session token>`);
  }
  return out.length > 200 ? `${out.slice(0, 200)}… (${out.length} chars)` : out;
}
