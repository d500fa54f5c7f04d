/**
 * Prints the SQL of foreign keys the modules declare (their descriptors' `crossKeys`). When a module
 * adds a key: \`npx drizzle-kit generate --custom --name <name>\` and fill the new file with this
 * script's output for the new key.
 */
import { coreCatalog } from "../src/core-modules.js";

const statements = coreCatalog().crossKeys.map((k) => {
  const [fs, ft, fc] = k.from.split(".");
  const [ts, tt, tc] = k.to.split(".");
  return (
    `ALTER TABLE "${fs}"."${ft}" ADD CONSTRAINT "${k.name}" FOREIGN KEY ("${fc}") ` +
    `REFERENCES "${ts}"."${tt}"("${tc}") ON DELETE ${k.onDelete.toUpperCase()};`
  );
});
console.log(
  ["-- Custom migration: foreign keys the modules declare.", statements.join("\n--> statement-breakpoint\n")].join(
    "\n",
  ),
);
