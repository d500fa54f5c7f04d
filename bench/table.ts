/**
 * One aligned table for every row of a run, and the line saying what machine measured it.
 */
import { cpus, loadavg, totalmem } from "node:os";
import type { Row } from "./types.js";

const number = (value: number, digits = 0) =>
  Number.isFinite(value)
    ? value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : "—";

// autocannon records whole milliseconds, so an HTTP latency of 0 means "under 1 ms".
const ms = (value: number | undefined) =>
  value === undefined ? "" : !Number.isFinite(value) ? "—" : value === 0 ? "<1 ms" : `${number(value, 2)} ms`;

export function formatTable(rows: Row[]): string {
  const header = ["scenario", "throughput", "p50", "p99", "ratio", "target", "pass", "note"];
  const cells = rows.map((row) => [
    row.scenario,
    Number.isFinite(row.throughput)
      ? `${number(row.throughput, Math.abs(row.throughput) < 10 && !Number.isInteger(row.throughput) ? 1 : 0)} ${row.unit}`
      : "—",
    ms(row.p50Ms),
    ms(row.p99Ms),
    row.ratio ? `${number(row.ratio.value, 2)}x ${row.ratio.against}` : "",
    row.target ?? "",
    row.pass === undefined ? "" : row.pass ? "yes" : "NO",
    row.note ?? "",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  // Numbers read best right-aligned; the last column (the note) is not padded.
  const rightAligned = new Set([1, 2, 3]);
  const line = (values: string[]) =>
    values
      .map((v, i) =>
        i === values.length - 1 ? v : rightAligned.has(i) ? v.padStart(widths[i]!) : v.padEnd(widths[i]!),
      )
      .join(" | ")
      .trimEnd();
  const rule = widths.map((w, i) => "-".repeat(i === widths.length - 1 ? Math.min(w, 40) : w)).join("-|-");
  return [line(header), rule, ...cells.map(line)].join("\n");
}

/** The 1-minute load average: other processes on a shared machine skew every number. */
export const loadAverage = () => loadavg()[0]!.toFixed(2);

export function machineLine(seconds: number, quick: boolean, loadAtStart: string): string {
  const cores = cpus();
  return `${[
    `node ${process.version}`,
    `${process.platform}/${process.arch}`,
    `${cores.length} cores (${cores[0]?.model.trim() ?? "unknown"})`,
    `${Math.round(totalmem() / 2 ** 30)} GiB`,
    `load avg ${loadAtStart} at start, ${loadAverage()} at end`,
    `BENCH_SECONDS=${seconds}${quick ? " BENCH_QUICK=1" : ""}`,
    new Date().toISOString(),
  ].join(" · ")}\nHTTP latencies come from autocannon at 1 ms resolution; in-process (ops/s) latencies are exact.`;
}
