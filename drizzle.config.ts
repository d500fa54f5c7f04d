import { defineConfig } from "drizzle-kit";

// Generation only reads the schema files; it never connects to a database.
export default defineConfig({
  dialect: "postgresql",
  schema: ["./src/modules/*/schema.ts", "./src/db/control-plane.ts"],
  out: "./drizzle",
});
