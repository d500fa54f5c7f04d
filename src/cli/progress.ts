/**
 * A small progress indicator on stderr (stdout stays for results): a redrawn bar when stderr is a
 * terminal, otherwise a plain line at most every few seconds (logs and CI keep readable output).
 */
export interface Progress {
  update(done: number, total: number, detail?: string): void;
  /** Ends the bar with a final line. */
  finish(message?: string): void;
}

export interface ProgressOptions {
  stream?: NodeJS.WriteStream;
  /** Minimum time between plain lines when the stream is not a terminal. */
  lineIntervalMs?: number;
}

const WIDTH = 30;

export function createProgress(label: string, options: ProgressOptions = {}): Progress {
  const stream = options.stream ?? process.stderr;
  const tty = !!stream.isTTY;
  const interval = options.lineIntervalMs ?? 2000;
  let lastDraw = 0;
  let last = "";
  let drawn = false;

  const render = (done: number, total: number, detail?: string) => {
    const ratio = total > 0 ? Math.min(1, done / total) : 1;
    const percent = `${Math.floor(ratio * 100)}%`.padStart(4);
    const counts = `${done}/${total}`;
    const suffix = detail ? ` ${detail}` : "";
    if (!tty) return `${label}: ${percent} (${counts})${suffix}`;
    const filled = Math.round(ratio * WIDTH);
    return `${label} [${"#".repeat(filled)}${"-".repeat(WIDTH - filled)}] ${percent} ${counts}${suffix}`;
  };

  return {
    update(done, total, detail) {
      const now = Date.now();
      const complete = done >= total;
      const line = render(done, total, detail);
      if (tty) {
        if (now - lastDraw < 50 && !complete) return;
        const columns = stream.columns ?? 80;
        stream.write(`\r${line.slice(0, columns - 1).padEnd(Math.min(last.length, columns - 1))}`);
        drawn = true;
      } else {
        if (now - lastDraw < interval && !complete) return;
        if (line === last) return;
        stream.write(`${line}\n`);
      }
      lastDraw = now;
      last = line;
    },
    finish(message) {
      if (tty && drawn) stream.write("\n");
      if (message) stream.write(`${message}\n`);
      drawn = false;
    },
  };
}
