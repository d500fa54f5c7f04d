/**
 * How the Resend transport classifies what comes back, through the real Resend SDK pointed at the
 * local stand-in: only a definite refusal (a 4xx in Resend's JSON error shape) is permanent; anything
 * the SDK cannot tell us for sure — a body without `statusCode`, a non-JSON body, no answer — is
 * retryable, so a degraded provider or a proxy in front of it never loses mail.
 */
import { Resend } from "resend";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startFakeResend, type FakeResend, type FakeResendAnswer } from "./testing/fake-resend.js";
import { createResendTransport, type EmailTransport, type SendOutcome } from "./transport.js";

let fake: FakeResend;
let transport: EmailTransport;

const email = {
  id: "11111111-1111-4111-8111-111111111111",
  from: "a@example.test",
  to: "b@example.test",
  subject: "s",
  html: "<p>h</p>",
  text: "h",
};

beforeAll(async () => {
  fake = await startFakeResend();
  transport = createResendTransport(new Resend("re_test_key", { baseUrl: fake.url }));
});

afterAll(async () => {
  await fake?.close();
});

beforeEach(() => fake.reset());

async function answerWith(answer: FakeResendAnswer, emails = [email]): Promise<SendOutcome> {
  fake.script(answer);
  return transport.send(emails, { idempotencyKey: "key-1" });
}

describe("resend transport", () => {
  it.each<[string, FakeResendAnswer, number | null]>([
    [
      "a 503 with an HTML page",
      { status: 503, body: "<html><body>Service Unavailable</body></html>", contentType: "text/html" },
      503,
    ],
    ["a 503 whose JSON body is {}", { status: 503, body: "{}" }, null],
    ["a 503 whose JSON body has no statusCode", { status: 503, body: '{"message":"upstream connect error"}' }, null],
    ["a 503 whose JSON body is null", { status: 503, body: "null" }, null],
    ["a 503 whose JSON body is a string", { status: 503, body: '"overloaded"' }, null],
    ["a 502 with an empty body", { status: 502, body: "", contentType: "text/plain" }, 502],
    ["a 403 HTML page from a proxy", { status: 403, body: "<html>Forbidden</html>", contentType: "text/html" }, 403],
    ["a 200 without a message id", { status: 200, body: "{}" }, null],
    ["a 408", { status: 408 }, 408],
    ["a 500", { status: 500 }, 500],
    ["a 409 for a key still being processed", { status: 409, name: "concurrent_idempotent_requests" }, 409],
  ])("retries %s", async (_, answer, status) => {
    const outcome = await answerWith(answer);
    expect(outcome).toMatchObject({ ok: false, retryable: true, status });
  });

  it("retries a batch answered 200 with fewer ids than messages", async () => {
    const outcome = await answerWith({ status: 200, body: '{"data":[{"id":"only-one"}]}' }, [
      email,
      { ...email, id: "22222222-2222-4222-8222-222222222222" },
    ]);
    expect(outcome).toMatchObject({ ok: false, retryable: true });
  });

  it("retries a 429 no sooner than Retry-After", async () => {
    expect(await answerWith({ status: 429, retryAfter: 2 })).toMatchObject({
      ok: false,
      retryable: true,
      status: 429,
      retryAfterMs: 2_000,
    });
  });

  it.each<[string, FakeResendAnswer]>([
    ["a 422 validation error", { status: 422, message: "Invalid `to` field" }],
    ["a 409 for a key reused with another payload", { status: 409, name: "invalid_idempotent_request" }],
    ["a 401", { status: 401 }],
  ])("gives up on %s", async (_, answer) => {
    expect(await answerWith(answer)).toMatchObject({
      ok: false,
      retryable: false,
      status: (answer as { status: number }).status,
    });
  });

  it("retries when the provider cannot be reached", async () => {
    const unreachable = createResendTransport(new Resend("re_test_key", { baseUrl: "http://127.0.0.1:9" }));
    expect(await unreachable.send([email], { idempotencyKey: "key-1" })).toMatchObject({
      ok: false,
      retryable: true,
      status: null,
    });
  });

  it("returns the provider's ids on success", async () => {
    const outcome = await transport.send([email], { idempotencyKey: "key-1" });
    expect(outcome).toEqual({ ok: true, providerIds: [fake.delivered[0]!.providerId] });
    expect(fake.requests[0]).toMatchObject({ idempotencyKey: "key-1", answered: 200 });
  });
});
