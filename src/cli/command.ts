/**
 * What every `sv-sdk` command shares: option parsing with `util.parseArgs`, `--help`, configuration
 * from the environment, the database and SDK set-up, and the exit-code convention — 0 success,
 * 1 the work failed, 2 the command was used wrongly (bad options or configuration).
 */
import { parseArgs } from "node:util";
import { loadConfig, type Config } from "../config.js";
import { resolveDatabase } from "../db/connect.js";
import { appliedMigrationCount, shippedMigrationCount } from "../db/migration-count.js";
import type { Topology } from "../db/topology.js";
import { createSdk, type Sdk } from "../sdk.js";
import { createLogger, prettyOutput } from "../logger.js";
import { sdkOptionsFromConfig } from "../sdk-from-config.js";
import postgres from "postgres";
import { onShutdownSignal, shutdownInOrder, signalExitCode } from "./shutdown.js";

export interface Command {
  name: string;
  /** The full `--help` text. */
  help: string;
  /** Runs with the arguments after the command name; resolves with the exit code. */
  run(args: string[]): Promise<number>;
}

/** The command was used wrongly: exit 2 with the message and a pointer to `--help`. */
export class UsageError extends Error {}
/** The work failed in a way the message fully explains: exit 1, no stack trace. */
export class CommandFailure extends Error {}

type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string }>;
type Values<T extends OptionSpec> = { [K in keyof T]?: T[K]["type"] extends "string" ? string : boolean };

/** Parses `args` strictly (unknown options and stray arguments are usage errors). */
export function parseOptions<T extends OptionSpec>(args: string[], options: T): Values<T> {
  try {
    const { values } = parseArgs({ args, options, strict: true, allowPositionals: false });
    return values as Values<T>;
  } catch (error) {
    throw new UsageError((error as Error).message.split("\n")[0]!);
  }
}

export function cliConfig(): Config {
  try {
    return loadConfig(process.env);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Log lines go to stderr: stdout carries the command's results. */
export function cliLogger(config: Config) {
  return createLogger({
    level: config.logLevel,
    destination: 2,
    pretty: prettyOutput({
      format: config.logFormat,
      environment: config.environment,
      isTTY: process.stderr.isTTY === true,
    }),
  });
}

/**
 * Runs `fn` on the configured databases. `external`: the command works on the API's database and
 * needs DATABASE_URL or DATABASE_TOPOLOGY; otherwise the embedded PostgreSQL is used as `npm start`
 * would (and stopped afterwards — or shared, while `npm start` runs on the same data directory).
 *
 * The embedded PostgreSQL runs in a session of its own, out of reach of a terminal's Ctrl-C: on
 * SIGINT or SIGTERM the command stops it (within SHUTDOWN_TIMEOUT_MS) and exits 130 or 143.
 */
export async function withTopology<T>(
  config: Config,
  external: boolean,
  fn: (topology: Topology) => Promise<T>,
): Promise<T> {
  if (external && !config.topology && !config.databaseUrl) {
    throw new UsageError(
      "DATABASE_URL (or DATABASE_TOPOLOGY) is required: this command works on the API's database, and the embedded PostgreSQL belongs to `npm start`",
    );
  }
  const resolving = resolveDatabase(config, (message) => process.stderr.write(`${message}\n`));
  const usesEmbedded = !config.topology && !config.databaseUrl;
  const removeSignalHandlers = usesEmbedded
    ? onShutdownSignal((signal) => {
        process.stderr.write(`sv-sdk: ${signal}: stopping the embedded PostgreSQL\n`);
        const embedded = resolving.then(
          (database) => database.embedded,
          () => undefined,
        );
        void shutdownInOrder(
          [
            { name: "start-up", run: () => embedded },
            {
              name: "the embedded PostgreSQL",
              reserveMs: Math.floor(config.shutdownTimeoutMs / 2),
              run: async (ms) => (await embedded)?.stop({ timeoutMs: ms }),
            },
          ],
          config.shutdownTimeoutMs,
          cliLogger(config),
        ).then(() => process.exit(signalExitCode(signal)));
      })
    : () => {};
  try {
    const { topology, embedded } = await resolving;
    try {
      return await fn(topology);
    } finally {
      await embedded?.stop({ timeoutMs: config.shutdownTimeoutMs });
    }
  } finally {
    removeSignalHandlers();
  }
}

/** Refuses to work on a database whose migrations are behind (`sv-sdk migrate` first). */
export async function requireMigrated(topology: Topology): Promise<void> {
  const shipped = shippedMigrationCount();
  for (const [name, database] of Object.entries(topology.databases)) {
    const sql = postgres(database.url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
    try {
      const applied = await appliedMigrationCount(sql);
      if (applied < shipped)
        throw new CommandFailure(
          `database '${name}' is not migrated (${applied}/${shipped}): run \`sv-sdk migrate\` first`,
        );
    } finally {
      await sql.end({ timeout: 5 });
    }
  }
}

/** Runs `fn` with an SDK built like the API server's, closed afterwards. */
export async function withSdk<T>(config: Config, topology: Topology, fn: (sdk: Sdk) => Promise<T>): Promise<T> {
  const sdk = createSdk(await sdkOptionsFromConfig(config, topology, cliLogger(config)));
  try {
    return await fn(sdk);
  } finally {
    await sdk.close();
  }
}

/** `--help`, then the command; maps errors to a one-line message and the exit code. */
export async function runCommand(command: Command, args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(`${command.help.trim()}\n`);
    return 0;
  }
  try {
    return await command.run(args);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(
        `sv-sdk ${command.name}: ${error.message}\nRun 'sv-sdk ${command.name} --help' for usage.\n`,
      );
      return 2;
    }
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`sv-sdk ${command.name} failed: ${message}\n`);
    return 1;
  }
}

/** Runs a command as a process's entry point (the npm scripts' files) and exits with its code. */
export async function main(command: Command, args = process.argv.slice(2)): Promise<void> {
  process.exitCode = await runCommand(command, args);
}
