/**
 * The `log` transport (EMAIL_TRANSPORT=log): nothing is delivered; each message becomes one log line
 * naming its send id, sender and recipient. Never the subject, body or headers: verification, reset
 * and invitation mail carry live tokens in their links (and a tenant's template may put one in the
 * subject), and log lines travel further than the database does. The send's row in `email.email_sends`
 * says which template it was.
 */
import type { Logger } from "../../logger.js";
import type { EmailTransport } from "./transport.js";

/** An EmailTransport named `log` (transport.ts's union names only `resend` and `development`). */
export interface LogTransport extends Omit<EmailTransport, "name"> {
  readonly name: "log";
}

export function createLogTransport(logger: Logger): LogTransport {
  return {
    name: "log",
    maxBatchSize: 100,
    async send(emails) {
      for (const email of emails) {
        logger.info("email not delivered (EMAIL_TRANSPORT=log)", { sendId: email.id, from: email.from, to: email.to });
      }
      return { ok: true, providerIds: emails.map((email) => `log_${email.id}`) };
    },
  };
}
