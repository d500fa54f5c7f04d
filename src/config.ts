/**
 * Configuration from the environment, validated once at start-up. Only entry points call
 * `loadConfig(process.env)`; library code takes options.
 */
import { z } from "zod";
import { parseTopology, type Topology } from "./db/topology.js";
import { parseTrustProxy, type TrustProxy } from "./http/client-address.js";

const csv = z
  .string()
  .optional()
  .transform((v) =>
    v
      ? v
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean)
      : [],
  );

const envSchema = z.object({
  NODE_ENV: z.enum(["development", "test", "production"]).default("development"),
  PORT: z.coerce.number().int().min(1).max(65535).default(3000),
  HOST: z.string().default("127.0.0.1"),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL")
    .optional(),
  DATABASE_APP_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL")
    .optional(),
  DATABASE_TOPOLOGY: z.string().optional(),
  DATA_DIR: z.string().default(".data"),
  EMBEDDED_PG_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  PUBLIC_URL: z.string().url().optional(),
  TRUSTED_ORIGINS: csv,
  COOKIE_SAME_SITE: z.enum(["lax", "strict", "none"]).default("lax"),
  BETTER_AUTH_SECRET: z.string().optional(),
  BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  LOG_FORMAT: z.enum(["json", "pretty"]).optional(),
  RESEND_API_KEY: z.string().optional(),
  RESEND_BASE_URL: z.string().url().optional(),
  RESEND_WEBHOOK_SECRET: z.string().optional(),
  EMAIL_FROM: z.string().default("sv-sdk <no-reply@localhost>"),
  EMAIL_DISPATCHER: z.enum(["on", "off"]).default("on"),
  EMAIL_UNSUBSCRIBE_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
  EMAIL_TRANSPORT: z.enum(["resend", "log", "development"]).optional(),
  TRUST_PROXY: z.string().optional(),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(1000).max(600_000).default(10_000),
});

/** Every variable `loadConfig` reads. */
export const CONFIG_VARIABLES = Object.keys(envSchema.shape) as (keyof typeof envSchema.shape)[];

/** `resend` sends; `log` delivers nothing and logs each message; `development` records mail for /dev/mail. */
export type EmailTransportName = "resend" | "log" | "development";

export interface Config {
  environment: "development" | "test" | "production";
  port: number;
  host: string;
  publicUrl: string;
  databaseUrl?: string;
  databaseAppUrl?: string;
  topology?: Topology;
  dataDir: string;
  embeddedPostgresPort?: number;
  trustedOrigins: string[];
  /** The session cookie's SameSite: `none` for a frontend on another site (then always Secure). */
  cookieSameSite: "lax" | "strict" | "none";
  authSecret?: string;
  bodyLimitBytes: number;
  /** Proxies in front that append to X-Forwarded-For: their number, or their addresses (src/http/client-address.ts). */
  trustProxy: TrustProxy;
  logLevel: "debug" | "info" | "warn" | "error";
  /** Unset: pretty in development on a terminal (when pino-pretty is installed), JSON lines otherwise. */
  logFormat?: "json" | "pretty";
  /** How long a graceful shutdown may take before the process stops what is left and exits 1. */
  shutdownTimeoutMs: number;
  email: {
    transport: EmailTransportName;
    resendApiKey?: string;
    resendBaseUrl?: string;
    webhookSecret?: string;
    from: string;
    dispatcher: boolean;
    unsubscribeSecret?: string;
  };
}

export function loadConfig(env: Record<string, string | undefined>): Config {
  // `DATABASE_URL=` is how compose files and CI pass "not set": an empty or blank value means unset,
  // for every variable, so defaults apply instead of a validation error.
  const parsed = envSchema.safeParse(
    Object.fromEntries(CONFIG_VARIABLES.map((name) => [name, env[name]?.trim() ? env[name] : undefined])),
  );
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new Error(`Invalid configuration — ${problems}`);
  }
  const e = parsed.data;
  const production = e.NODE_ENV === "production";
  if (production && (!e.BETTER_AUTH_SECRET || e.BETTER_AUTH_SECRET.length < 32)) {
    throw new Error("BETTER_AUTH_SECRET must be set to at least 32 random characters when NODE_ENV=production");
  }
  if (production && !e.DATABASE_URL && !e.DATABASE_TOPOLOGY) {
    throw new Error(
      "DATABASE_URL (or DATABASE_TOPOLOGY) is required when NODE_ENV=production: the embedded PostgreSQL is for development",
    );
  }
  const transport = emailTransport(e.EMAIL_TRANSPORT, !!e.RESEND_API_KEY, production);
  if (production && transport === "resend" && !e.EMAIL_UNSUBSCRIBE_SECRET) {
    throw new Error(
      "EMAIL_UNSUBSCRIBE_SECRET (32+ characters) is required with RESEND_API_KEY in production: it signs one-click unsubscribe links",
    );
  }
  let topology: Topology | undefined;
  if (e.DATABASE_TOPOLOGY) {
    try {
      topology = parseTopology(JSON.parse(e.DATABASE_TOPOLOGY));
    } catch (error) {
      throw new Error(`DATABASE_TOPOLOGY is not a valid topology: ${(error as Error).message}`);
    }
  }
  const publicUrl = e.PUBLIC_URL ?? `http://localhost:${e.PORT}`;
  return {
    environment: e.NODE_ENV,
    port: e.PORT,
    host: e.HOST,
    publicUrl,
    databaseUrl: e.DATABASE_URL,
    databaseAppUrl: e.DATABASE_APP_URL,
    topology,
    dataDir: e.DATA_DIR,
    embeddedPostgresPort: e.EMBEDDED_PG_PORT,
    trustedOrigins: [...new Set([new URL(publicUrl).origin, ...e.TRUSTED_ORIGINS])],
    cookieSameSite: e.COOKIE_SAME_SITE,
    authSecret: e.BETTER_AUTH_SECRET,
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    trustProxy: parseTrustProxy(e.TRUST_PROXY),
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    email: {
      transport,
      resendApiKey: e.RESEND_API_KEY,
      resendBaseUrl: e.RESEND_BASE_URL,
      webhookSecret: e.RESEND_WEBHOOK_SECRET,
      from: e.EMAIL_FROM,
      dispatcher: e.EMAIL_DISPATCHER === "on",
      unsubscribeSecret: e.EMAIL_UNSUBSCRIBE_SECRET,
    },
  };
}

/**
 * Production never falls back to the development recorder silently: mail that is not sent must be a
 * decision (EMAIL_TRANSPORT=log), not the effect of a missing key.
 */
function emailTransport(
  chosen: EmailTransportName | undefined,
  hasResendKey: boolean,
  production: boolean,
): EmailTransportName {
  if (chosen === "resend" && !hasResendKey) throw new Error("EMAIL_TRANSPORT=resend needs RESEND_API_KEY");
  if (chosen === "development" && production) {
    throw new Error(
      "EMAIL_TRANSPORT=development records mail in the database and is refused when NODE_ENV=production: use resend (with RESEND_API_KEY) or log",
    );
  }
  if (chosen) return chosen;
  if (hasResendKey) return "resend";
  if (production) {
    throw new Error(
      "NODE_ENV=production needs a real email transport: set RESEND_API_KEY (and EMAIL_UNSUBSCRIBE_SECRET) to send through Resend, " +
        "or EMAIL_TRANSPORT=log to deliver nothing and only log each message (email verification is then not required)",
    );
  }
  return "development";
}

/**
 * For entry points: the configuration, or — when it is wrong — the sentence saying what is wrong on
 * stderr and exit code 1. A configuration mistake is the operator's to fix; a stack trace hides it.
 */
export function loadConfigOrExit(env: Record<string, string | undefined>): Config {
  try {
    return loadConfig(env);
  } catch (error) {
    process.stderr.write(`sv-sdk cannot start: ${(error as Error).message}\n`);
    process.exit(1);
  }
}
