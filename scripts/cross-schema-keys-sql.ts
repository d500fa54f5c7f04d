/**
 * Prints the SQL of the `0001_cross_schema_keys` migration from `src/db/cross-schema-keys.ts`.
 * When a key is added there: `npx drizzle-kit generate --custom --name <name>` and fill the new
 * file with this script's output for the new key.
 */
import { CROSS_SCHEMA_KEYS } from "../src/db/cross-schema-keys.js";

const statements = CROSS_SCHEMA_KEYS.map(
  (k) =>
    `ALTER TABLE "${k.from.schema}"."${k.from.table}" ADD CONSTRAINT "${k.name}" FOREIGN KEY ("${k.from.column}") ` +
    `REFERENCES "${k.to.schema}"."${k.to.table}"("${k.to.column}") ON DELETE ${k.onDelete.toUpperCase()};`,
);
console.log(
  ["-- Custom migration: the cross-schema foreign keys listed in src/db/cross-schema-keys.ts.", statements.join("\n--> statement-breakpoint\n")].join("\n"),
);
