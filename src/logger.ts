/**
 * Structured logs, one JSON object per line (pino), or pretty lines for a person at a terminal.
 * Library code takes a Logger; only entry points choose the level, the format and where it writes.
 *
 * What a line may carry is decided here, once, for every logger this file makes: a field whose key
 * names a credential is replaced at any depth, an Error becomes its cause chain without a failed
 * query's bound parameters, and a password inside a URL is cut out.
 */
import { createRequire } from "node:module";
import { isatty } from "node:tty";
import { pino, type DestinationStream } from "pino";
import { describeError } from "./errors.js";
import { REDACTED, SECRET_KEY } from "./redact.js";

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /**
   * A logger whose every line also carries `bindings` (a request's id, method and path). Optional,
   * so that a hand-written Logger stays valid: call `childLogger(logger, bindings)` instead.
   */
  child?(bindings: LogFields): Logger;
}

export interface LoggerOptions {
  /** Lines below it are dropped before anything is formatted. Default `info`. */
  level?: LogLevel;
  /**
   * Human lines through pino-pretty (a development dependency) instead of JSON. When pino-pretty
   * is not installed (the production image) the logger writes JSON and says so in a warning line:
   * a log format is no reason to refuse to start.
   */
  pretty?: boolean;
  /** A file descriptor (1 stdout, the default; 2 stderr) or anything with `write(line)`. */
  destination?: number | { write(line: string): unknown };
}

/**
 * Credentials, by key name. The audit trail's pattern (password, secret, token, API key,
 * authorization, cookie — so `accessToken`, `set-cookie`, `x-api-key` too), plus what only a log
 * line is likely to hold: private keys (the JWKS rows) and credentials objects.
 */
const SECRET_FIELD = new RegExp(`${SECRET_KEY.source}|private[_-]?key|credential`, "i");
/** `scheme://user:password@host`: the password part. */
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:@/]*:)[^\s@/]+@/gi;
/** Deeper than this a value is not walked (nor written): logs are not a dump. */
const MAX_DEPTH = 12;

/**
 * The fields as they may be written. Returns `fields` itself when nothing had to change (the usual
 * request line: a few strings and numbers), a copy otherwise; the caller's objects are never modified.
 *
 * Pino's own `redact` paths are not used: a path names one key at one depth (a wildcard stands for
 * one level), so "a token at any depth" is not expressible, and a second list of names would drift
 * from this one.
 */
export function redactFields(fields: LogFields): LogFields {
  return clean(fields, 0, []) as LogFields;
}

/** A message or string field without a password written into a URL (`postgres://app:…@db`). */
function cleanText(text: string): string {
  return text.includes("://") && text.includes("@") ? text.replace(URL_PASSWORD, `$1${REDACTED}@`) : text;
}

function clean(value: unknown, depth: number, ancestors: object[]): unknown {
  if (typeof value === "string") return cleanText(value);
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Date) return value;
  // The cause chain, the SQL text instead of a failed query's message, never its parameters.
  if (value instanceof Error) return clean(describeError(value), depth, ancestors);
  if (typeof (value as { toJSON?: unknown }).toJSON === "function") {
    // What JSON.stringify would write (a URL's href, say), walked like the rest.
    const json = (value as { toJSON(): unknown }).toJSON();
    if (json !== value) return clean(json, depth, ancestors);
  }
  if (ancestors.includes(value)) return "[Circular]";
  if (depth >= MAX_DEPTH) return "[Too deep]";
  ancestors.push(value);
  try {
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const item = clean(value[i], depth + 1, ancestors);
        if (item !== value[i]) (copy ??= value.slice())[i] = item;
      }
      return copy ?? value;
    }
    let copy: LogFields | undefined;
    for (const key of Object.keys(value)) {
      const item = (value as LogFields)[key];
      const cleaned = SECRET_FIELD.test(key)
        ? item === undefined || item === null
          ? item
          : REDACTED
        : clean(item, depth + 1, ancestors);
      if (cleaned !== item) (copy ??= { ...(value as LogFields) })[key] = cleaned;
    }
    return copy ?? value;
  } finally {
    ancestors.pop();
  }
}

/**
 * Whether output should be pretty: `LOG_FORMAT` decides when given; otherwise a person in
 * development (the stream is a terminal) gets pretty lines if pino-pretty is installed, and
 * everything else — production, tests, a pipe into a log shipper — JSON lines.
 */
export function prettyOutput(options: { format?: "json" | "pretty"; environment: string; isTTY: boolean }): boolean {
  if (options.format) return options.format === "pretty";
  return options.environment === "development" && options.isTTY && loadPrettyFactory() !== undefined;
}

type PrettyFactory = (options: Record<string, unknown>) => (line: string) => string;
const requireOptional = createRequire(import.meta.url);
let prettyFactory: PrettyFactory | null | undefined;
/** pino-pretty, loaded only when asked for: it is a development dependency, absent from the image. */
function loadPrettyFactory(): PrettyFactory | undefined {
  if (prettyFactory === undefined) {
    try {
      prettyFactory = (requireOptional("pino-pretty") as { prettyFactory: PrettyFactory }).prettyFactory;
    } catch {
      prettyFactory = null;
    }
  }
  return prettyFactory ?? undefined;
}

/**
 * A pino-backed Logger.
 *
 * @example
 * const logger = createLogger({ level: "info", pretty: false, destination: 1 });
 * const requestLog = childLogger(logger, { requestId, method: "GET", path: "/health" });
 * requestLog.info("request", { status: 200, durationMs: 1.4 }); // {"level":"info","time":"…","requestId":…,"status":200,"message":"request"}
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? 1;
  // Synchronous writes, as process.stdout.write to a file or pipe: the line before a process.exit
  // (a crash, the end of a shutdown) is not lost.
  let sink: DestinationStream =
    typeof destination === "number"
      ? pino.destination({ dest: destination, sync: true })
      : { write: (line) => void destination.write(line) };
  const factory = options.pretty ? loadPrettyFactory() : undefined;
  if (factory) {
    const prettify = factory({
      colorize: typeof destination === "number" && isatty(destination),
      messageKey: "message",
      translateTime: "SYS:HH:MM:ss.l",
      // Fields stay on the line's indented block; a request line reads "INFO: request" + its fields.
      singleLine: false,
    });
    const raw = sink;
    sink = { write: (line) => raw.write(prettify(line)) };
  }
  const root = pino(
    {
      level: options.level ?? "info",
      // The line's shape since the first release: level as a word, ISO time, `message`; no pid or
      // hostname (the container runtime adds where a line came from).
      base: null,
      messageKey: "message",
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }), log: redactFields },
    },
    sink,
  );
  const logger = new PinoLogger(root);
  if (options.pretty && !factory)
    logger.warn("pretty logs need the pino-pretty package (a development dependency): writing JSON lines");
  return logger;
}

/**
 * Methods on the prototype, not closures: a request's child logger is then one small object (per
 * request, closures measured about 2 µs more CPU than pino's child itself).
 */
class PinoLogger implements Logger {
  constructor(private readonly instance: pino.Logger) {}
  debug(message: string, fields?: LogFields): void {
    if (fields) this.instance.debug(fields, cleanText(message));
    else this.instance.debug(cleanText(message));
  }
  info(message: string, fields?: LogFields): void {
    if (fields) this.instance.info(fields, cleanText(message));
    else this.instance.info(cleanText(message));
  }
  warn(message: string, fields?: LogFields): void {
    if (fields) this.instance.warn(fields, cleanText(message));
    else this.instance.warn(cleanText(message));
  }
  error(message: string, fields?: LogFields): void {
    if (fields) this.instance.error(fields, cleanText(message));
    else this.instance.error(cleanText(message));
  }
  child(bindings: LogFields): Logger {
    // Pino's children do not pass their bindings through `formatters`: they are cleaned here, once.
    return new PinoLogger(this.instance.child(redactFields(bindings)));
  }
}

/** `logger.child(bindings)`, or for a Logger without one, a wrapper that adds them to each line. */
export function childLogger(logger: Logger, bindings: LogFields): Logger {
  if (logger.child) return logger.child(bindings);
  const bind = (at: LogLevel) => (message: string, fields?: LogFields) =>
    logger[at](message, { ...bindings, ...fields });
  return {
    debug: bind("debug"),
    info: bind("info"),
    warn: bind("warn"),
    error: bind("error"),
    child: (more) => childLogger(logger, { ...bindings, ...more }),
  };
}

/**
 * JSON lines at `level` through `write`.
 * @deprecated Use `createLogger({ level, destination: { write } })`.
 */
export function createJsonLogger(
  level: LogLevel = "info",
  write: (line: string) => void = (l) => process.stdout.write(l),
): Logger {
  return createLogger({ level, destination: { write } });
}

/** Discards everything (tests, benchmarks). */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silentLogger };
