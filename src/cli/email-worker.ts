/**
 * `npm run email:worker`: `sv-sdk email:worker` as its own entry point (see commands/email-worker.ts).
 */
import { main } from "./command.js";
import { emailWorkerCommand } from "./commands/email-worker.js";

await main(emailWorkerCommand);
