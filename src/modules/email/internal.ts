/**
 * What the email verbs share: their dependencies, and the lookups that concern every place the
 * module's rows may be (sends and their events follow their tenant; suppressions and preferences
 * stay with the schema).
 */
import type { ModuleContext } from "../../db/module.js";
import { CommonErrors } from "../../errors.js";
import type { AuditModule } from "../audit/index.js";
import type { EmailRecipients } from "./options.js";
import type { EmailTemplateDefinition } from "./templates.js";

/** The first argument of every email verb. */
export interface EmailDeps {
  context: ModuleContext;
  audit: AuditModule;
  recipients: EmailRecipients;
  /** The template definitions, by key (the shipped defaults and the app's own). */
  definitions: ReadonlyMap<string, EmailTemplateDefinition>;
  /** The sender when a send names none. */
  from: string;
  /** Signs one-click unsubscribe tokens. */
  unsubscribeSecret: Buffer;
  /** Public base URL, for the unsubscribe links in mail. */
  publicUrl?: string;
}

/**
 * Runs `find` as platform work (every tenant's rows) at each place the module's rows may be, until
 * one finds something. The places after a hit are still visited but answer at once. When nothing
 * is found and a place could not answer, "not found" would be a guess: the lookup fails with a 503
 * the caller may retry.
 */
export async function findAnywhere<T>(
  context: ModuleContext,
  find: () => Promise<T | undefined>,
): Promise<T | undefined> {
  let found: T | undefined;
  const { missing } = await context.everywhere(async () => {
    if (found === undefined) found = await find();
  });
  if (found === undefined && missing.length > 0) throw CommonErrors.DATABASE_UNAVAILABLE({ missing });
  return found;
}

/** Runs `fn` at every place as platform work and gathers the results; a place that cannot answer fails the read (503). */
export async function fromEverywhere<T>(context: ModuleContext, fn: () => Promise<T>): Promise<T[]> {
  const { results, missing } = await context.everywhere(fn);
  if (missing.length > 0) throw CommonErrors.DATABASE_UNAVAILABLE({ missing });
  return results;
}

/** Runs `fn` as platform work where the module's schema is (rows that belong to no tenant's place). */
export async function atHome<T>(context: ModuleContext, fn: () => Promise<T>): Promise<T> {
  const [result] = await context.homeAndTenant(null, () => context.withTenant("*", fn));
  return result!;
}
