/** The notes verbs: each takes the module context and works in the unit's tenant. */
import { asc } from "drizzle-orm";
import type { ModuleContext } from "sv-sdk";
import { notes } from "./schema.js";

export interface Note {
  id: string;
  body: string;
}

/** Adds a note to a tenant (the platform routes the write to wherever the tenant lives). */
export function addNote(context: ModuleContext, tenantId: string, body: string): Promise<Note> {
  return context.withTenant(tenantId, async () => {
    const [row] = await context
      .db()
      .insert(notes)
      .values({ tenantId, body })
      .returning({ id: notes.id, body: notes.body });
    return row!;
  });
}

/** A tenant's notes, oldest first (row-level security keeps other tenants' out). */
export function listNotes(context: ModuleContext, tenantId: string): Promise<Note[]> {
  return context.withTenant(tenantId, () =>
    context.db().select({ id: notes.id, body: notes.body }).from(notes).orderBy(asc(notes.createdAt), asc(notes.id)),
  );
}
