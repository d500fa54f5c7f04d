/**
 * Tests only: a second email module beside the SDK's, with options of its own (another transport,
 * secret or environment), on the SDK's databases and audit, with the recipients the SDK gives it.
 */
import { eq } from "drizzle-orm";
import { createModuleContext } from "../../../db/module-context.js";
import type { Sdk } from "../../../index.js";
import { silentLogger } from "../../../logger.js";
import { users } from "../../auth/index.js";
import { emailModule, type EmailModule, type EmailOptions } from "../index.js";

export function emailModuleWith(sdk: Sdk, options: EmailOptions): EmailModule {
  return emailModule.create(createModuleContext(sdk.router, emailModule, silentLogger), {
    audit: sdk.audit,
    options,
    recipients: {
      emailOf: (userId) => sdk.auth.emailOf(userId),
      userIdOf: async (address) =>
        (await sdk.router.db("auth").select({ id: users.id }).from(users).where(eq(users.email, address.toLowerCase())))[0]?.id,
    },
  });
}
