/**
 * Resend webhooks: the Svix-style signature over the raw body is checked by the Resend SDK's verifier
 * (5 minute timestamp tolerance); the event id (`svix-id`) is stored unique, so a replayed delivery
 * changes nothing. Status only moves forward (a late `delivered` does not undo `opened`); hard bounces
 * and complaints add the address to the suppression list.
 *
 * A send lives with its tenant, so the event is looked for at every place the module's rows may be
 * and recorded beside the send it concerns; an event for no known send is recorded where the email
 * schema is, as is the suppression list.
 */
import { sql } from "drizzle-orm";
import type { Resend } from "resend";
import { EmailErrors } from "./errors.js";
import { atHome, findAnywhere, type EmailDeps } from "./internal.js";
import { emailEvents, suppressions, type EmailSendStatus } from "./schema.js";
import { UUID } from "../../uuid.js";

export interface WebhookHeaders {
  "svix-id"?: string | null;
  "svix-timestamp"?: string | null;
  "svix-signature"?: string | null;
}

export interface WebhookResult {
  outcome: "processed" | "replayed" | "ignored";
  eventId: string;
  sendId?: string;
  status?: EmailSendStatus;
}

const STATUS_OF_EVENT: Record<string, EmailSendStatus> = {
  "email.sent": "sent",
  "email.delivered": "delivered",
  "email.delivery_delayed": "delayed",
  "email.opened": "opened",
  "email.clicked": "clicked",
  "email.bounced": "bounced",
  "email.complained": "complained",
};

/** How far along a send is: an event only moves a send to a later stage. */
const STAGE: Partial<Record<EmailSendStatus, number>> = {
  queued: 0,
  sending: 0,
  sent: 1,
  delayed: 2,
  delivered: 3,
  opened: 4,
  clicked: 5,
  bounced: 6,
  complained: 7,
};

interface EventPayload {
  type?: string;
  data?: {
    email_id?: string;
    to?: string[] | string;
    tags?: Record<string, string> | { name: string; value: string }[];
    bounce?: { type?: string };
  };
}

export interface WebhookDeps extends Pick<EmailDeps, "context" | "audit"> {
  /** A Resend client, for its verifier only. */
  resend: Resend;
  webhookSecret?: string;
}

const ACTOR = { type: "webhook" as const, id: "resend" };

function sendIdTag(tags: NonNullable<EventPayload["data"]>["tags"]): string | undefined {
  if (!tags) return undefined;
  if (Array.isArray(tags)) return tags.find((t) => t.name === "send_id")?.value;
  return tags.send_id;
}

/** One verified webhook delivery. */
interface Delivery {
  /** svix-id */
  id: string;
  type: string;
  event: EventPayload;
  providerId?: string;
}

interface FoundSend {
  id: string;
  tenant_id: string | null;
  status: EmailSendStatus;
}

/** The send an event concerns, at the place the lookup runs at: by provider id, else by its send_id tag. */
async function findSend(
  { context }: WebhookDeps,
  providerId: string | undefined,
  tagged: string | undefined,
): Promise<FoundSend | undefined> {
  if (!providerId && !(tagged && UUID.test(tagged))) return undefined;
  const [send] = (await context.db().execute(sql`
    select id, tenant_id, status from email.email_sends
    where ${providerId ? sql`provider_message_id = ${providerId}` : sql`false`}
       or ${tagged && UUID.test(tagged) ? sql`id = ${tagged}::uuid` : sql`false`}
    order by (provider_message_id = ${providerId ?? null}) desc nulls last
    limit 1
  `)) as unknown as FoundSend[];
  return send;
}

/** Records the event beside its send (the place the lookup runs at), moves the send's status, suppresses. */
async function apply(
  { context, audit }: WebhookDeps,
  { id, type, event, providerId }: Delivery,
  send: FoundSend | undefined,
): Promise<WebhookResult> {
  const [inserted] = await context
    .db()
    .insert(emailEvents)
    .values({ providerEventId: id, sendId: send?.id ?? null, type, payload: event })
    .onConflictDoNothing({ target: emailEvents.providerEventId })
    .returning({ id: emailEvents.id });
  if (!inserted) return { outcome: "replayed" as const, eventId: id, sendId: send?.id };

  const next = STATUS_OF_EVENT[type];
  let status: EmailSendStatus | undefined;
  if (send && next) {
    const earlier = Object.entries(STAGE)
      .filter(([, stage]) => stage! < STAGE[next]!)
      .map(([s]) => s);
    const [updated] = (await context.db().execute(sql`
      update email.email_sends set status = ${next}, updated_at = now(),
        provider_message_id = coalesce(provider_message_id, ${providerId ?? null})
      where id = ${send.id} and status in ${earlier}
      returning status
    `)) as unknown as { status: EmailSendStatus }[];
    status = updated?.status;
  }
  await audit.recordAuditEvent({
    action: "email.webhook_received",
    actor: ACTOR,
    tenantId: send?.tenant_id ?? null,
    target: { type: "email_send", id: send?.id ?? id },
    metadata: { eventId: id, type, providerMessageId: providerId, statusChanged: status ?? null },
  });

  const hardBounce = type === "email.bounced" && event.data?.bounce?.type?.toLowerCase() === "permanent";
  if (hardBounce || type === "email.complained") {
    const reason = hardBounce ? ("hard_bounce" as const) : ("complaint" as const);
    const to = event.data?.to;
    for (const address of (Array.isArray(to) ? to : to ? [to] : []).map((a) => a.toLowerCase())) {
      const [added] = await context
        .schemaDb()
        .insert(suppressions)
        .values({ email: address, reason, sourceEventId: id })
        .onConflictDoNothing()
        .returning({ email: suppressions.email });
      if (added) {
        await audit.recordAuditEvent({
          action: "email.suppressed",
          actor: ACTOR,
          tenantId: send?.tenant_id ?? null,
          target: { type: "email_send", id: send?.id ?? id },
          metadata: { reason, eventId: id },
        });
      }
    }
  }
  return {
    outcome: next && send ? ("processed" as const) : ("ignored" as const),
    eventId: id,
    sendId: send?.id,
    status,
  };
}

/**
 * Verifies and applies one Resend webhook delivery. Pass the raw body, before any JSON parsing: the
 * signature covers its exact bytes.
 *
 * @example
 * app.post("/hooks/resend", async (c) => c.json(await sdk.email.handleResendWebhook(await c.req.text(), {
 *   "svix-id": c.req.header("svix-id"), "svix-timestamp": c.req.header("svix-timestamp"),
 *   "svix-signature": c.req.header("svix-signature"),
 * })));
 */
export async function handleResendWebhook(
  deps: WebhookDeps,
  rawBody: string,
  headers: WebhookHeaders,
): Promise<WebhookResult> {
  const { context, resend, webhookSecret } = deps;
  if (!webhookSecret) throw EmailErrors.WEBHOOK_NOT_CONFIGURED();
  const id = headers["svix-id"];
  const timestamp = headers["svix-timestamp"];
  const signature = headers["svix-signature"];
  if (!id || !timestamp || !signature) throw EmailErrors.WEBHOOK_SIGNATURE_INVALID({ reason: "missing svix headers" });
  let event: EventPayload;
  try {
    event = resend.webhooks.verify({
      payload: rawBody,
      headers: { id, timestamp, signature },
      webhookSecret,
    }) as EventPayload;
  } catch (error) {
    throw EmailErrors.WEBHOOK_SIGNATURE_INVALID({ reason: (error as Error).message });
  }
  const delivery: Delivery = { id, type: event?.type ?? "unknown", event, providerId: event.data?.email_id };
  const tagged = sendIdTag(event.data?.tags);

  // Webhooks are platform work: they may concern any tenant's sends, wherever they live. The common
  // case (the send is where the email schema is) is one unit of work.
  const found = await findAnywhere(context, async () => {
    const send = await findSend(deps, delivery.providerId, tagged);
    return send ? apply(deps, delivery, send) : undefined;
  });
  return found ?? atHome(context, () => apply(deps, delivery, undefined));
}
