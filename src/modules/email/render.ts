/**
 * The template engine: LiquidJS, configured for templates that tenant admins write and that render
 * data the application does not control (a user's name, an organization's name).
 *
 * - Nothing outside the template and its data is reachable: no file system (`include`, `render` and
 *   `layout` are refused when the template is parsed, and the engine's file system is an empty
 *   in-memory one), no prototype properties (`ownPropertyOnly`), no globals.
 * - Mistakes fail loudly: an unknown filter is a parse error (`strictFilters`), an unknown variable a
 *   render error (`strictVariables`; `if` may still test one, `lenientIf`).
 * - Work is bounded: a template's size (`parseLimit`), a message's render time (`renderLimit`, one
 *   budget shared by its three parts), what filters and ranges allocate (`memoryLimit`), and the size
 *   of each rendered part (checked before the output is used).
 * - In the HTML part every output is HTML-escaped and there is no `raw` filter to opt out: the data
 *   is never trusted, and a template admin who wants markup writes it in the template. The subject
 *   and the text part are not escaped; the subject is one line (see `renderParts`).
 */
import { AssertionError, Liquid, LiquidError, toValue, type Template } from "liquidjs";
import { EmailErrors } from "./errors.js";

export interface TemplateContent {
  subject: string;
  html: string;
  text: string;
}

export type ContentPart = keyof TemplateContent;
export type CompiledContent = Record<ContentPart, Template[]>;

const PARTS = ["subject", "html", "text"] as const satisfies readonly ContentPart[];

/** The limits every render runs under; generous for mail, small for a loop that never ends. */
export const RENDER_LIMITS = {
  /** Characters in one part's source (the API accepts at most 200 000 for the HTML part). */
  templateChars: 300_000,
  /** Milliseconds for the whole message; a real template takes well under one. */
  renderMs: 200,
  /** Units LiquidJS charges per part: characters filters produce, elements of ranges and arrays. */
  memory: 1_000_000,
  /** Characters in each rendered part. */
  output: { subject: 5_000, html: 2_000_000, text: 1_000_000 } satisfies Record<ContentPart, number>,
} as const;

/** What a template admin sees for the names LiquidJS would otherwise report as "tag not found". */
const REFUSED_TAGS: Record<string, string> = {
  include: "the include tag is not available: email templates cannot read other files",
  render: "the render tag is not available: email templates cannot read other files",
  layout: "the layout tag is not available: email templates cannot read other files",
};

/** Byte for byte the escaping of the `{{name}}` renderer this engine replaced, so stored templates render as before. */
export function escapeHtml(value: string): string {
  return value
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

/** How LiquidJS prints a value: nothing for null, arrays joined. */
function display(value: unknown): string {
  const v = toValue(value) as unknown;
  if (v === undefined || v === null) return "";
  if (Array.isArray(v)) return v.map(display).join("");
  return String(v);
}

interface FilterThis {
  context: { memoryLimit: { use(count: number): void } };
}

function htmlEscapeFilter(this: FilterThis, value: unknown): string {
  const text = display(value);
  this.context.memoryLimit.use(text.length);
  return escapeHtml(text);
}

const UNESCAPES: Record<string, string> = {
  "&amp;": "&",
  "&lt;": "<",
  "&gt;": ">",
  "&quot;": '"',
  "&#34;": '"',
  "&#39;": "'",
};

function htmlEscapeOnceFilter(this: FilterThis, value: unknown): string {
  const unescaped = display(value).replace(/&(?:amp|lt|gt|quot|#34|#39);/g, (entity) => UNESCAPES[entity]!);
  return htmlEscapeFilter.call(this, unescaped);
}

function createEngine(part: "markup" | "plain"): Liquid {
  const liquid = new Liquid({
    strictVariables: true,
    strictFilters: true,
    lenientIf: true,
    ownPropertyOnly: true,
    // An empty in-memory file system: even a tag that slipped through could read nothing from disk.
    templates: {},
    parseLimit: RENDER_LIMITS.templateChars,
    memoryLimit: RENDER_LIMITS.memory,
    renderLimit: RENDER_LIMITS.renderMs,
    outputEscape: part === "markup" ? htmlEscapeFilter : undefined,
  });
  for (const [tag, message] of Object.entries(REFUSED_TAGS)) {
    liquid.registerTag(tag, {
      parse() {
        throw new Error(message);
      },
      render() {},
    });
  }
  if (part === "markup") {
    // `raw` would print data unescaped. The escaping filters are marked raw themselves so that
    // `{{ x | escape }}`, written out of habit, escapes once instead of twice.
    delete liquid.filters.raw;
    liquid.registerFilter("escape", { handler: htmlEscapeFilter, raw: true });
    liquid.registerFilter("xml_escape", { handler: htmlEscapeFilter, raw: true });
    liquid.registerFilter("escape_once", { handler: htmlEscapeOnceFilter, raw: true });
  }
  return liquid;
}

const engines: Record<ContentPart, Liquid> = (() => {
  const plain = createEngine("plain");
  return { subject: plain, html: createEngine("markup"), text: plain };
})();

/** A LiquidJS message without the engine's internals, with a hint where the bare one would puzzle. */
function messageOf(part: ContentPart, error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (part === "html" && /^undefined filter: raw\b/.test(message)) {
    return `${message} (the HTML part always escapes variables; write markup in the template, not in the data)`;
  }
  return message;
}

/**
 * Parsed parts by source, most recently used last. A send parses its stored template again otherwise,
 * which costs more than rendering it; parsed templates hold no render state, so they are shared.
 */
const parsedCache = new Map<string, Template[]>();
const CACHE_ENTRIES = 256;
const CACHE_SOURCE_CHARS = 50_000;

function parse(part: ContentPart, source: string): Template[] {
  const key = `${part === "html" ? "markup" : "plain"}\u0000${source}`;
  const hit = parsedCache.get(key);
  if (hit) {
    parsedCache.delete(key);
    parsedCache.set(key, hit);
    return hit;
  }
  const parsed = engines[part].parse(source);
  if (source.length <= CACHE_SOURCE_CHARS) {
    parsedCache.set(key, parsed);
    if (parsedCache.size > CACHE_ENTRIES) parsedCache.delete(parsedCache.keys().next().value!);
  }
  return parsed;
}

/**
 * Parses each part of `content`; a part that is not valid Liquid (or uses a refused tag or filter)
 * is a 400 naming the part and the problem, with its line and column.
 *
 * @example
 * const compiled = compileContent({ subject: "Hi {{ name }}", html: "<p>{{ name }}</p>", text: "{{ name }}" });
 */
export function compileContent(content: TemplateContent): CompiledContent {
  const compiled: Partial<CompiledContent> = {};
  const errors: { path: ContentPart; message: string }[] = [];
  for (const part of PARTS) {
    try {
      compiled[part] = parse(part, content[part]);
    } catch (error) {
      // The size limit is an AssertionError, not a LiquidError.
      if (!(error instanceof LiquidError) && !(error instanceof AssertionError)) throw error;
      errors.push({ path: part, message: messageOf(part, error) });
    }
  }
  if (errors.length > 0) throw EmailErrors.TEMPLATE_SYNTAX_INVALID({ errors });
  return compiled as CompiledContent;
}

/** The data variables compiled content reads (not those it assigns itself, nor loop variables). */
export function variablesOf(compiled: CompiledContent): string[] {
  const names = new Set<string>();
  for (const part of PARTS) for (const name of engines[part].globalVariablesSync(compiled[part])) names.add(name);
  return [...names];
}

/**
 * Renders compiled content with `values` (already validated) under the limits. A part that fails —
 * a limit reached, a filter given the wrong kind of value — is a 422 naming the part.
 *
 * The subject becomes one line: CR and LF are what would let data start a header of its own
 * (`Bcc:`), and a display name or an event description with a line break in it should still send,
 * so each run of them becomes one space rather than failing the mail. Stored subjects cannot
 * contain them at all (`subjectProblem`); this covers data, filters and string literals alike.
 */
export function renderParts(
  compiled: CompiledContent,
  values: Record<string, unknown>,
  renderMs: number = RENDER_LIMITS.renderMs,
): TemplateContent {
  const deadline = performance.now() + renderMs;
  const rendered: Partial<TemplateContent> = {};
  for (const part of PARTS) {
    let output: string;
    try {
      const renderLimit = Math.max(1, deadline - performance.now());
      output = String(engines[part].renderSync(compiled[part], values, { renderLimit }));
    } catch (error) {
      if (!(error instanceof LiquidError)) throw error;
      throw EmailErrors.TEMPLATE_RENDER_FAILED({ errors: [{ path: part, message: messageOf(part, error) }] });
    }
    // `length` before anything else touches the string: a long output may still be a cheap rope.
    if (output.length > RENDER_LIMITS.output[part]) {
      throw EmailErrors.TEMPLATE_RENDER_FAILED({
        errors: [
          {
            path: part,
            message: `rendered to ${output.length} characters, more than the ${RENDER_LIMITS.output[part]} allowed`,
          },
        ],
      });
    }
    rendered[part] = part === "subject" ? oneLine(output) : output;
  }
  return rendered as TemplateContent;
}

const LINE_BREAKS = /[\r\n]+/g;

/** A header value: each run of CR/LF becomes one space. */
export function oneLine(value: string): string {
  return value.replace(LINE_BREAKS, " ").trim();
}

/** A subject as stored: one line. Also the API's validation pattern, so the two cannot drift apart. */
export const SUBJECT_ONE_LINE = {
  pattern: /^[^\r\n]*$/,
  message: "must be a single line: CR and LF are not allowed in a mail header",
};

/** What is wrong with a stored subject, in the API's `errors` shape (a 400 naming `subject`), if anything. */
export function subjectProblem(subject: string): { path: "subject"; message: string } | undefined {
  return SUBJECT_ONE_LINE.pattern.test(subject) ? undefined : { path: "subject", message: SUBJECT_ONE_LINE.message };
}
