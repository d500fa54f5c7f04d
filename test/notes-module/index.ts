/**
 * A fifth module, as an SDK user writes one: this folder, and one line that registers it
 * (`createSdk({ modules: [notesModule] })`). It names no database: the platform places its table with
 * its tenant, migrates it everywhere (`sdk.migrate()`), and moves its rows with the tenant.
 */
import { fileURLToPath } from "node:url";
import { defineModule, type ModuleLifecycle } from "sv-sdk";
import { addNote, listNotes, type Note } from "./notes.js";

export interface NotesModule extends ModuleLifecycle {
  /** Adds a note to the tenant's notes. */
  add(tenantId: string, body: string): Promise<Note>;
  /** The tenant's notes, oldest first. */
  list(tenantId: string): Promise<Note[]>;
}

export const notesModule = defineModule<NotesModule>({
  name: "notes",
  schema: "notes",
  tables: { notes: "tenant" },
  migrations: { folder: fileURLToPath(new URL("./drizzle", import.meta.url)), schemas: ["notes"] },
  create: (context) => ({
    add: (tenantId, body) => addNote(context, tenantId, body),
    list: (tenantId) => listNotes(context, tenantId),
  }),
});

export { notes } from "./schema.js";
export type { Note } from "./notes.js";
