/**
 * The example service: sv-sdk's app (auth, permissions, audit, email, docs) with the invoice routes
 * added. Run it like src/server.ts runs sv-sdk, with `createInvoicesApp(sdk)` in place of createApp.
 */
import { createApp, type AppOptions, type Sdk } from "sv-sdk";
import { createInvoiceRoutes } from "./routes.js";

export function createInvoicesApp(sdk: Sdk, options: AppOptions = {}) {
  const app = createApp(sdk, options);
  app.route("/api/v1/invoices", createInvoiceRoutes(sdk));
  return app;
}
