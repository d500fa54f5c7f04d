/**
 * The email module's error codes, declared once; the HTTP adapter maps them to problem+json.
 */
import { defineErrors } from "../../errors.js";

export const EmailErrors = defineErrors({
  TEMPLATE_NOT_FOUND: { status: 404, message: "No email template with this key, locale or id" },
  TEMPLATE_UNKNOWN_KEY: {
    status: 400,
    message: "No template definition declares this key (its variables are unknown)",
  },
  TEMPLATE_UNDECLARED_VARIABLE: { status: 400, message: "The template uses variables its definition does not declare" },
  TEMPLATE_DATA_INVALID: { status: 400, message: "The data does not match the template's variables" },
  TEMPLATE_SYNTAX_INVALID: {
    status: 400,
    message: "The template is not valid: see `errors` for the part, line and column",
  },
  TEMPLATE_RENDER_FAILED: {
    status: 422,
    message: "The template could not be rendered (a limit was reached or a filter failed): see `errors`",
  },
  TEMPLATE_IS_DEFAULT: {
    status: 409,
    message: "A shipped default template cannot be deleted; update it or override it per tenant",
  },
  RECIPIENT_REQUIRED: { status: 400, message: "An email needs `to` or a `userId` whose address is known" },
  CATEGORY_NOT_OPTIONAL: { status: 400, message: "Account and security email cannot be opted out of" },
  UNSUBSCRIBE_TOKEN_INVALID: { status: 400, message: "The unsubscribe link is not valid" },
  WEBHOOK_SIGNATURE_INVALID: { status: 401, message: "The webhook signature is missing, invalid or too old" },
  WEBHOOK_NOT_CONFIGURED: { status: 503, message: "Webhooks are not configured (RESEND_WEBHOOK_SECRET is not set)" },
  DEV_TRANSPORT_INACTIVE: { status: 404, message: "The development transport is not active (a Resend key is set)" },
  DEV_MESSAGE_NOT_FOUND: { status: 404, message: "No development message with this id" },
  SEND_NOT_FOUND: { status: 404, message: "No email send with this id" },
});
