/**
 * Users, for scripts, tests and the other modules: creating one with a password, and an address by id.
 */
import { eq } from "drizzle-orm";
import type { ModuleContext } from "../../db/module.js";
import { CommonErrors } from "../../errors.js";
import type { BetterAuth } from "./better-auth.js";
import { users } from "./schema.js";
import { UUID } from "../../uuid.js";

export interface CreateUserInput {
  email: string;
  password: string;
  name: string;
  /** Marks the address verified. */
  emailVerified?: boolean;
}

/** The user `createUser` made. */
export type CreatedUser = Awaited<ReturnType<BetterAuth["api"]["signUpEmail"]>>["user"] & { emailVerified: boolean };

/**
 * Sign-up in one unit of work: user, account, default role, audit event, verification email. An
 * address already taken is a CONFLICT (better-auth's own sign-up answers the same for both).
 */
export function createUser(
  deps: { context: ModuleContext; auth: BetterAuth },
  input: CreateUserInput,
): Promise<CreatedUser> {
  const { context, auth } = deps;
  return context.transaction(async () => {
    const email = input.email.toLowerCase();
    const [existing] = await context.db().select({ id: users.id }).from(users).where(eq(users.email, email));
    if (existing) throw CommonErrors.CONFLICT({ email }, "A user with this email already exists");
    const result = await auth.api.signUpEmail({ body: { email, password: input.password, name: input.name } });
    if (input.emailVerified) {
      await context.db().update(users).set({ emailVerified: true }).where(eq(users.id, result.user.id));
    }
    return { ...result.user, emailVerified: input.emailVerified ?? false };
  });
}

/** The address of a user, or undefined (not a user id, or no such user). */
export async function emailOf(context: ModuleContext, userId: string): Promise<string | undefined> {
  if (!UUID.test(userId)) return undefined;
  const [row] = await context.db().select({ email: users.email }).from(users).where(eq(users.id, userId));
  return row?.email;
}

/** The user an address belongs to, or undefined (addresses are stored lower-cased). */
export async function userIdOf(context: ModuleContext, address: string): Promise<string | undefined> {
  const [row] = await context.db().select({ id: users.id }).from(users).where(eq(users.email, address.toLowerCase()));
  return row?.id;
}
