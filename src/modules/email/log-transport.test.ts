import { describe, expect, it } from "vitest";
import type { Logger } from "../../logger.js";
import { createLogTransport } from "./log-transport.js";

describe("the log transport", () => {
  it("logs one line per message with its send id and addresses, never its subject, body, links or headers", async () => {
    const lines: { message: string; fields?: Record<string, unknown> }[] = [];
    const record = (message: string, fields?: Record<string, unknown>) => void lines.push({ message, fields });
    const logger: Logger = { debug: record, info: record, warn: record, error: record };
    const token = "tok_live_7c1d9e";
    const email = (id: string) => ({
      id,
      from: "Acme <no-reply@acme.test>",
      to: `${id}@example.test`,
      subject: `Your code ${token}`,
      html: `<a href="https://acme.test/verify?token=${token}">verify</a>`,
      text: `https://acme.test/verify?token=${token}`,
      headers: { "List-Unsubscribe": `<https://acme.test/unsubscribe?token=${token}>` },
    });

    const outcome = await createLogTransport(logger).send([email("a"), email("b")], { idempotencyKey: "k" });

    expect(outcome).toEqual({ ok: true, providerIds: ["log_a", "log_b"] });
    expect(lines).toEqual([
      {
        message: "email not delivered (EMAIL_TRANSPORT=log)",
        fields: { sendId: "a", from: "Acme <no-reply@acme.test>", to: "a@example.test" },
      },
      {
        message: "email not delivered (EMAIL_TRANSPORT=log)",
        fields: { sendId: "b", from: "Acme <no-reply@acme.test>", to: "b@example.test" },
      },
    ]);
    expect(JSON.stringify(lines)).not.toContain(token);
  });
});
