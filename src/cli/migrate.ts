/**
 * `npm run db:migrate`: `sv-sdk migrate` as its own entry point (see commands/migrate.ts).
 */
import { main } from "./command.js";
import { migrateCommand } from "./commands/migrate.js";

await main(migrateCommand);
