import { cliConfig, cliLogger, parseOptions, withSdk, withTopology, type Command } from "../command.js";
import { onShutdownSignal } from "../shutdown.js";

export const emailWorkerCommand: Command = {
  name: "email:worker",
  help: `
Usage: sv-sdk email:worker

Runs the email dispatcher without the API: it claims queued sends (FOR UPDATE SKIP LOCKED, so any
number of workers may run), delivers them through Resend (RESEND_API_KEY) or the development
transport, and retries with backoff. It works on the API's database, so DATABASE_URL or
DATABASE_TOPOLOGY is required. On SIGTERM/SIGINT it stops claiming, aborts requests in flight and
returns its claimed rows to the queue, within SHUTDOWN_TIMEOUT_MS (default 10 s; exit 1 past it).

Exit codes: 0 stopped cleanly, 1 failed, 2 bad options or configuration.`,
  async run(args) {
    parseOptions(args, {});
    const config = cliConfig();
    const logger = cliLogger(config);
    await withTopology(config, true, (topology) =>
      withSdk(config, topology, async (sdk) => {
        await sdk.email.startDispatcher();
        logger.info("email worker running", { transport: sdk.email.transport });
        // Handlers that stay: under `npm run`, Ctrl-C arrives twice (from the terminal, and forwarded
        // by npm), and a second SIGINT without a handler would kill the worker mid-shutdown.
        const signal = await new Promise<NodeJS.Signals>((resolve) => onShutdownSignal(resolve, logger));
        logger.info("email worker shutting down", { signal });
        // A stuck step must not keep the process alive forever.
        setTimeout(() => {
          logger.error("email worker shutdown timed out; exiting");
          process.exit(1);
        }, config.shutdownTimeoutMs).unref();
      }),
    );
    logger.info("email worker stopped");
    return 0;
  },
};
