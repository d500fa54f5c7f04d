/**
 * Tests only: a second email module beside the SDK's, with options of its own (another transport,
 * secret or environment), on the SDK's databases and audit, with the recipients the SDK gives it.
 */
import { createModuleContext } from "../../../db/module-context.js";
import type { Sdk } from "../../../sdk.js";
import { silentLogger } from "../../../logger.js";
import { emailModule, type EmailModule, type EmailOptions } from "../index.js";

export function emailModuleWith(sdk: Sdk, options: EmailOptions): EmailModule {
  return emailModule.create(createModuleContext(sdk.router, emailModule, silentLogger), {
    audit: sdk.audit,
    options,
    recipients: {
      emailOf: (userId) => sdk.auth.emailOf(userId),
      userIdOf: (address) => sdk.auth.userIdOf(address),
    },
  });
}
