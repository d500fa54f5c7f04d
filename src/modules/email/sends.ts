/**
 * Reading sends and the development transport's messages across tenants, wherever they live (for
 * operators, the mail viewer and tests): platform work that visits every place.
 */
import { desc, eq, sql } from "drizzle-orm";
import { EmailErrors } from "./errors.js";
import { findAnywhere, fromEverywhere, type EmailDeps } from "./internal.js";
import { devMessages, emailSends } from "./schema.js";

type Deps = Pick<EmailDeps, "context">;

/**
 * One send, across tenants and the databases they live in (for operators and tests).
 *
 * @example
 * const send = await sdk.email.getSend(id);
 */
export async function getSend({ context }: Deps, id: string) {
  const found = await findAnywhere(context, async () => {
    const [row] = await context.db().select().from(emailSends).where(eq(emailSends.id, id));
    return row;
  });
  if (!found) throw EmailErrors.SEND_NOT_FOUND({ id });
  return found;
}

/**
 * Messages the development transport recorded, in every database, newest first.
 *
 * @example
 * const [latest] = await sdk.email.listDevMessages({ to: "ada@example.test" });
 */
export async function listDevMessages({ context }: Deps, { limit = 50, to }: { limit?: number; to?: string } = {}) {
  const count = Math.min(Math.max(limit, 1), 500);
  // Each place's newest `count`, merged: a message is recorded beside its send (its tenant's place).
  const perPlace = await fromEverywhere(context, () =>
    context
      .db()
      .select()
      .from(devMessages)
      .where(to ? sql`lower(${devMessages.toAddress}) = ${to.toLowerCase()}` : undefined)
      .orderBy(desc(devMessages.createdAt))
      .limit(count),
  );
  return perPlace
    .flat()
    .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())
    .slice(0, count);
}

/** @example const message = await sdk.email.getDevMessage(id); */
export async function getDevMessage({ context }: Deps, id: string) {
  const found = await findAnywhere(context, async () => {
    const [row] = await context.db().select().from(devMessages).where(eq(devMessages.id, id));
    return row;
  });
  if (!found) throw EmailErrors.DEV_MESSAGE_NOT_FOUND({ id });
  return found;
}
