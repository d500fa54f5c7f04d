/**
 * The Liquid renderer on its own (no database): that what rendered before renders the same, that the
 * language works, and that a template admin can neither reach past the template and its data nor
 * keep the process busy.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { AppError } from "../../errors.js";
import { RENDER_LIMITS } from "./render.js";
import {
  DEFAULT_TEMPLATES,
  checkTemplateContent,
  defineEmailTemplate,
  renderContent,
  type EmailTemplateDefinition,
  type TemplateContent,
} from "./templates.js";

interface LegacyRenders {
  templates: {
    key: string;
    content: TemplateContent;
    renders: { data: Record<string, unknown>; output: TemplateContent }[];
  }[];
}
/** Captured from the `{{name}}` regex renderer before it was replaced (commit 3e7ece4). */
const legacy = JSON.parse(
  readFileSync(new URL("./testing/legacy-renders.json", import.meta.url), "utf8"),
) as LegacyRenders;

const definition = (key: string) => DEFAULT_TEMPLATES.find((d) => d.key === key)!;

/** What a reader sees: the text between the tags, whitespace collapsed. */
const visibleText = (html: string) =>
  html
    .replace(/<[^>]*>/g, " ")
    .replace(/\s+/g, " ")
    .trim();
const hrefs = (html: string) => [...html.matchAll(/href="([^"]*)"/g)].map((m) => m[1]);

/** The AppError `fn` throws, for asserting its code and details. */
function thrown(fn: () => unknown): AppError {
  try {
    fn();
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error("expected an AppError, nothing was thrown");
}

const receipt: EmailTemplateDefinition = defineEmailTemplate({
  key: "receipt",
  category: "account",
  variables: z.strictObject({
    name: z.string(),
    items: z.array(z.strictObject({ label: z.string(), price: z.number() })),
    note: z.string().optional(),
  }),
  sample: { name: "Ada", items: [{ label: "Tea", price: 3 }] },
  defaults: { subject: "Your receipt", html: "<p>{{ name }}</p>", text: "{{ name }}" },
});
const html = (source: string): TemplateContent => ({ subject: "s", html: source, text: "t" });

describe("rendering what rendered before", () => {
  it("renders every {{name}} template the landed renderer shipped exactly as it did, with sample, required-only and hostile data", () => {
    expect(legacy.templates.map((t) => t.key).sort()).toEqual(DEFAULT_TEMPLATES.map((d) => d.key).sort());
    for (const template of legacy.templates) {
      for (const { data, output } of template.renders) {
        expect(
          renderContent(definition(template.key), template.content, data),
          `${template.key} ${JSON.stringify(data)}`,
        ).toEqual(output);
      }
    }
  });

  it("keeps every shipped default's subject and text, and its HTML's words and links, inside the new layout", () => {
    for (const template of legacy.templates) {
      const current = definition(template.key);
      expect(current.defaults.subject).toBe(template.content.subject);
      expect(current.defaults.text).toBe(template.content.text);
      const [sample, ...others] = template.renders;
      const hostile = others.at(-1)!;
      for (const { data, output } of [sample!, hostile]) {
        const now = renderContent(current, current.defaults, data);
        expect(now.subject).toBe(output.subject);
        expect(now.text).toBe(output.text);
        expect(visibleText(now.html)).toBe(visibleText(output.html));
        expect(hrefs(now.html)).toEqual(hrefs(output.html));
      }
    }
  });

  it("leaves out what an optional variable would have said when it is missing, instead of an empty link", () => {
    const welcome = renderContent(definition("welcome"), definition("welcome").defaults, { name: "Ada" });
    expect(visibleText(welcome.html)).toBe("Welcome, Ada! Your account is ready.");
    expect(welcome.html).not.toContain('href=""');
    const notice = renderContent(definition("security-notice"), definition("security-notice").defaults, {
      name: "Ada",
      event: "E",
    });
    expect(notice.html).not.toMatch(/<p[^>]*><\/p>/);
  });

  it("lays the shipped HTML out for phones: one fluid column of at most 600 px, tables, inline styles, nothing fetched", () => {
    for (const d of DEFAULT_TEMPLATES) {
      const { html } = renderContent(d, d.defaults, d.sample);
      expect(html).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
      expect(html).toContain('role="presentation"');
      expect(html).toMatch(/width:100%;max-width:600px/);
      expect(html).not.toMatch(/<style|<link|<script|<img|\bsrc=|url\(|@import/i);
      // Every URL in the message is one the data gave it.
      const urls = html.match(/https?:\/\/[^"'<\s]+/g) ?? [];
      for (const url of urls) expect(Object.values(d.sample)).toContain(url);
    }
  });
});

describe("the template language", () => {
  it("has conditionals, loops, filters and assignments", () => {
    const content = {
      subject: "{{ items | size }} item{% if items.size != 1 %}s{% endif %} for {{ name | upcase }}",
      html: "<ul>{% for item in items %}<li>{{ forloop.index }}. {{ item.label }}: {{ item.price | times: 2 }}</li>{% endfor %}</ul>{% if note %}<p>{{ note }}</p>{% else %}<p>no note</p>{% endif %}",
      text: "{% assign total = 0 %}{% for item in items %}{% assign total = total | plus: item.price %}{% endfor %}Total {{ total }}{% unless note %}, no note{% endunless %}",
    };
    const data = {
      name: "Ada",
      items: [
        { label: "Tea", price: 3 },
        { label: "Cake", price: 4 },
      ],
    };
    checkTemplateContent(receipt, content);
    expect(renderContent(receipt, content, data)).toEqual({
      subject: "2 items for ADA",
      html: "<ul><li>1. Tea: 6</li><li>2. Cake: 8</li></ul><p>no note</p>",
      text: "Total 7, no note",
    });
  });

  it("HTML-escapes every output in the HTML part, once, and nothing in the subject or the text", () => {
    const content = {
      subject: "Hi {{ name }}",
      html: "<p>{{ name }}|{{ name | escape }}|{{ name | escape_once }}|{{ name | append: '<br>' }}|{{ note | escape_once }}</p>",
      text: "{{ name }}",
    };
    const rendered = renderContent(receipt, content, { name: `<b>"A" & 'B'</b>`, items: [], note: "&lt;i&gt; & <u>" });
    const escaped = "&lt;b&gt;&quot;A&quot; &amp; &#39;B&#39;&lt;/b&gt;";
    expect(rendered.html).toBe(
      `<p>${escaped}|${escaped}|${escaped}|${escaped}&lt;br&gt;|&lt;i&gt; &amp; &lt;u&gt;</p>`,
    );
    expect(rendered.subject).toBe(`Hi <b>"A" & 'B'</b>`);
    expect(rendered.text).toBe(`<b>"A" & 'B'</b>`);
  });

  it("refuses, naming the part, line and column: a syntax error, an unknown filter, raw in the HTML part", () => {
    const broken = thrown(() =>
      checkTemplateContent(receipt, { subject: "ok", html: "<p>\n{% if name %}open", text: "{{ name | nope }}" }),
    );
    expect(broken).toMatchObject({ code: "TEMPLATE_SYNTAX_INVALID", status: 400 });
    expect(broken.details!.errors).toEqual([
      { path: "html", message: expect.stringMatching(/not closed, line:2, col:1/) },
      { path: "text", message: expect.stringMatching(/undefined filter: nope/) },
    ]);
    const raw = thrown(() => checkTemplateContent(receipt, html("{{ name | raw }}")));
    expect(raw.details!.errors).toEqual([
      { path: "html", message: expect.stringMatching(/undefined filter: raw.*always escapes/) },
    ]);
    // In the text part nothing is escaped, so raw is harmless there.
    expect(() => checkTemplateContent(receipt, { ...html("x"), text: "{{ name | raw }}" })).not.toThrow();
  });

  it("refuses variables the definition does not declare, but not the template's own", () => {
    const error = thrown(() =>
      checkTemplateContent(receipt, html("{% assign n = nmae %}{% for i in items %}{{ i.label }}{{ n }}{% endfor %}")),
    );
    expect(error).toMatchObject({ code: "TEMPLATE_UNDECLARED_VARIABLE", details: { undeclared: ["nmae"] } });
  });
});

describe("the sandbox", () => {
  it.each(["include", "render", "layout"])("refuses %s when the template is parsed: no file is ever read", (tag) => {
    const error = thrown(() => checkTemplateContent(receipt, html(`{% ${tag} 'package.json' %}`)));
    expect(error).toMatchObject({ code: "TEMPLATE_SYNTAX_INVALID" });
    expect(error.details!.errors).toEqual([
      { path: "html", message: expect.stringContaining(`the ${tag} tag is not available`) },
    ]);
  });

  it("shows no property a value does not own (prototype, constructor)", () => {
    for (const source of [
      "{{ name.constructor }}",
      "{{ items.constructor.name }}",
      "{{ name.__proto__ }}",
      "{{ items[0].toString }}",
    ]) {
      const error = thrown(() =>
        renderContent(receipt, html(source), { name: "Ada", items: [{ label: "Tea", price: 1 }] }),
      );
      expect(error, source).toMatchObject({ code: "TEMPLATE_RENDER_FAILED", status: 422 });
      expect(error.details!.errors).toEqual([{ path: "html", message: expect.stringContaining("undefined variable") }]);
    }
  });

  it("stops a loop that would run for minutes, within the render budget", () => {
    const many = Array.from({ length: 1000 }, (_, i) => ({ label: String(i), price: i }));
    for (const source of [
      "{% for a in items %}{% for b in items %}{% for c in items %}{{ c.label }}{% endfor %}{% endfor %}{% endfor %}",
      // An empty body was once a way around the time check (CVE-2026-44645, fixed upstream).
      "{% for a in items %}{% for b in items %}{% for c in items %}{% endfor %}{% endfor %}{% endfor %}",
    ]) {
      const started = performance.now();
      const error = thrown(() => renderContent(receipt, html(source), { name: "Ada", items: many }));
      expect(error).toMatchObject({ code: "TEMPLATE_RENDER_FAILED" });
      expect(error.details!.errors).toEqual([
        { path: "html", message: expect.stringContaining("template render limit exceeded") },
      ]);
      expect(performance.now() - started).toBeLessThan(RENDER_LIMITS.renderMs + 800);
    }
  });

  it("stops a template that doubles a string until memory runs out, or asks for a billion-element range", () => {
    for (const source of [
      "{% assign s = name %}{% for i in (1..64) %}{% assign s = s | append: s %}{% endfor %}{{ s | size }}",
      "{% for i in (1..1000000000) %}x{% endfor %}",
    ]) {
      const started = performance.now();
      const error = thrown(() => renderContent(receipt, html(source), { name: "Ada", items: [] }));
      expect(error.details!.errors).toEqual([
        { path: "html", message: expect.stringContaining("memory alloc limit exceeded") },
      ]);
      expect(performance.now() - started).toBeLessThan(RENDER_LIMITS.renderMs + 800);
    }
  });

  it("refuses output larger than a message may be, before it is used", () => {
    const error = thrown(() =>
      renderContent(receipt, html(`{% for i in (1..300) %}${"x".repeat(10_000)}{% endfor %}`), {
        name: "A",
        items: [],
      }),
    );
    expect(error.details!.errors).toEqual([
      { path: "html", message: expect.stringMatching(/rendered to 3000000 characters, more than the 2000000 allowed/) },
    ]);
  });

  it("refuses, when the content is stored, a template that exceeds the limits with the definition's sample data", () => {
    const error = thrown(() =>
      checkTemplateContent(
        receipt,
        html("{% assign s = name %}{% for i in (1..64) %}{% assign s = s | append: s %}{% endfor %}"),
      ),
    );
    expect(error).toMatchObject({ code: "TEMPLATE_RENDER_FAILED", status: 422 });
  });

  it("holds stored content to the message budget, but not the application's own defaults, rendered cold at import", () => {
    // 130³ loop steps: well past the 200 ms message budget, a few seconds at most.
    const slow = html(
      "{% for a in items %}{% for b in items %}{% for c in items %}{% endfor %}{% endfor %}{% endfor %}",
    );
    const items = Array.from({ length: 130 }, (_, i) => ({ label: String(i), price: i }));
    const heavy: EmailTemplateDefinition = { ...receipt, key: "heavy", sample: { name: "Ada", items } };
    const error = thrown(() => checkTemplateContent(heavy, slow));
    expect(error.details!.errors).toEqual([
      { path: "html", message: expect.stringContaining("template render limit exceeded") },
    ]);
    expect(defineEmailTemplate({ ...heavy, defaults: slow }).key).toBe("heavy");
  });

  it("fails fast at startup on a definition whose default content is unusable", () => {
    expect(() => defineEmailTemplate({ ...receipt, key: "broken", defaults: html("{% if %}") })).toThrow(
      /Email template 'broken'.*TEMPLATE_SYNTAX_INVALID/,
    );
  });
});

describe("the subject is one header line", () => {
  it("refuses a stored subject with CR or LF, naming subject", () => {
    for (const subject of ["Hi\r\nBcc: x@evil.test", "Hi\nthere", "Hi\r"]) {
      const error = thrown(() => checkTemplateContent(receipt, { subject, html: "h", text: "t" }));
      expect(error).toMatchObject({ code: "VALIDATION_FAILED", status: 400 });
      expect(error.details!.errors).toEqual([{ path: "subject", message: expect.stringContaining("CR and LF") }]);
    }
  });

  it("turns line breaks from data, filters or literals into one space", () => {
    const content = {
      subject: "Hi {{ name }}{{ note | newline_to_br | strip_html }}{{ '' | append: note }}",
      html: "h",
      text: "{{ name }}",
    };
    const rendered = renderContent(receipt, content, {
      name: "Ada\r\nBcc: x@evil.test",
      items: [],
      note: "\n\r\nX-Evil: 1\r",
    });
    expect(rendered.subject).not.toMatch(/[\r\n]/);
    expect(rendered.subject).toBe("Hi Ada Bcc: x@evil.test X-Evil: 1 X-Evil: 1");
    // The text part is a body, not a header: its line breaks stay.
    expect(rendered.text).toBe("Ada\r\nBcc: x@evil.test");
  });
});
