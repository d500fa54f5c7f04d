/**
 * The SDK options an entry point builds from its configuration: one place, so the API server, the
 * email worker and the CLI sign cookies and unsubscribe links with the same secrets.
 */
import type { Config } from "./config.js";
import type { Topology } from "./db/topology.js";
import { developmentSecret } from "./dev-secret.js";
import type { SdkOptions } from "./sdk.js";
import type { Logger } from "./logger.js";

export async function sdkOptionsFromConfig(config: Config, topology: Topology, logger: Logger): Promise<SdkOptions> {
  const production = config.environment === "production";
  return {
    topology,
    environment: config.environment,
    logger,
    auth: {
      secret: config.authSecret ?? (production ? undefined : await developmentSecret(config.dataDir)),
      baseUrl: config.publicUrl,
      trustedOrigins: config.trustedOrigins,
      cookieSameSite: config.cookieSameSite,
      // With EMAIL_TRANSPORT=log no verification mail arrives: requiring it would lock every new user out.
      ...(config.email.transport === "log" ? { requireEmailVerification: false } : {}),
    },
    email: {
      from: config.email.from,
      transport: config.email.transport,
      // Only the resend transport uses the key (EMAIL_TRANSPORT=log beside a key sends nothing).
      resendApiKey: config.email.transport === "resend" ? config.email.resendApiKey : undefined,
      resendBaseUrl: config.email.resendBaseUrl,
      webhookSecret: config.email.webhookSecret,
      unsubscribeSecret:
        config.email.unsubscribeSecret ??
        (production ? undefined : await developmentSecret(config.dataDir, "unsubscribe-secret")),
      publicUrl: config.publicUrl,
      environment: config.environment,
    },
  };
}
