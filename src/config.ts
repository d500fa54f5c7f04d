/**
 * Configuration from the environment, validated once at start-up. Only entry points call
 * `loadConfig(process.env)`; library code takes options.
 */
import { z } from "zod";
import { parseTopology, type Topology } from "./db/topology.js";

const csv = z
  .string()
  .optional()
  .transform((v) => (v ? v.split(",").map((s) => s.trim()).filter(Boolean) : []));

const envSchema = z.object({
  NODE_ENV: z.enum(["development", "test", "production"]).default("development"),
  PORT: z.coerce.number().int().min(1).max(65535).default(3000),
  HOST: z.string().default("127.0.0.1"),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL").optional(),
  DATABASE_APP_URL: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL").optional(),
  DATABASE_TOPOLOGY: z.string().optional(),
  DATA_DIR: z.string().default(".data"),
  EMBEDDED_PG_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  PUBLIC_URL: z.string().url().optional(),
  TRUSTED_ORIGINS: csv,
  BETTER_AUTH_SECRET: z.string().optional(),
  BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  RESEND_API_KEY: z.string().optional(),
  RESEND_BASE_URL: z.string().url().optional(),
  RESEND_WEBHOOK_SECRET: z.string().optional(),
  EMAIL_FROM: z.string().default("sv-sdk <no-reply@localhost>"),
  EMAIL_DISPATCHER: z.enum(["on", "off"]).default("on"),
  EMAIL_UNSUBSCRIBE_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
  TRUST_PROXY: z.enum(["0", "1"]).default("0"),
});

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
  authSecret?: string;
  bodyLimitBytes: number;
  trustProxy: boolean;
  logLevel: "debug" | "info" | "warn" | "error";
  email: {
    resendApiKey?: string;
    resendBaseUrl?: string;
    webhookSecret?: string;
    from: string;
    dispatcher: boolean;
    unsubscribeSecret?: string;
  };
}

export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = envSchema.safeParse(env);
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
    throw new Error("DATABASE_URL (or DATABASE_TOPOLOGY) is required when NODE_ENV=production: the embedded PostgreSQL is for development");
  }
  if (production && e.RESEND_API_KEY && !e.EMAIL_UNSUBSCRIBE_SECRET) {
    throw new Error("EMAIL_UNSUBSCRIBE_SECRET (32+ characters) is required with RESEND_API_KEY in production: it signs one-click unsubscribe links");
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
    authSecret: e.BETTER_AUTH_SECRET,
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    trustProxy: e.TRUST_PROXY === "1",
    logLevel: e.LOG_LEVEL,
    email: {
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
