/**
 * The README, as a newcomer follows it: its code blocks, read out of README.md.
 *
 * - `readmeBlocks()`: every fenced block with its language, the heading it sits under and its line.
 * - `projectSteps(sections)`: the steps of the README's walkthrough sections, in order — a TypeScript
 *   block whose first line is `// <path>` is a file to write, a `sh` block's `npm`/`npx` lines are
 *   commands to run (its `export` lines are the reader's own settings, which the test supplies).
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export interface ReadmeBlock {
  language: string;
  /** The `## ` heading the block sits under. */
  section: string;
  /** 1-based line of the opening fence. */
  line: number;
  text: string;
}

export type ProjectStep =
  | { kind: "file"; path: string; text: string; line: number }
  | { kind: "command"; command: string; line: number };

const README = fileURLToPath(new URL("../README.md", import.meta.url));

export function readmeBlocks(text = readFileSync(README, "utf8")): ReadmeBlock[] {
  const blocks: ReadmeBlock[] = [];
  const lines = text.split("\n");
  let section = "";
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith("## ")) section = line.slice(3).trim();
    const fence = /^```(\w+)\s*$/.exec(line);
    if (!fence) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== "```"; i++) body.push(lines[i]!);
    blocks.push({ language: fence[1]!, section, line: start + 1, text: `${body.join("\n")}\n` });
  }
  return blocks;
}

const FILE_HEADER = /^\/\/ ([\w./-]+\.(?:ts|json))\n/;

/** The path a TypeScript block is a file of (its first line, `// path`), if it is one. */
export const filePathOf = (block: ReadmeBlock) => FILE_HEADER.exec(block.text)?.[1];

export function projectSteps(sections: readonly string[], blocks = readmeBlocks()): ProjectStep[] {
  const steps: ProjectStep[] = [];
  for (const block of blocks.filter((b) => sections.includes(b.section))) {
    if (block.language === "ts") {
      const path = filePathOf(block);
      if (path) steps.push({ kind: "file", path, text: block.text.replace(FILE_HEADER, ""), line: block.line });
    } else if (block.language === "sh") {
      for (const command of block.text.split("\n").map((l) => l.trim())) {
        if (/^(npm|npx) /.test(command)) steps.push({ kind: "command", command, line: block.line });
      }
    }
  }
  return steps;
}
