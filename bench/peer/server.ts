/**
 * The peer: a stock better-auth + Hono app, as better-auth's documentation sets one up — the drizzle
 * adapter on postgres.js (its default pool, 10), email and password, the cookie cache on (5 min, as
 * ours), rate limiting at its production default (on, in memory, keyed on X-Forwarded-For), and a
 * `GET /api/me` route that reads the session with `auth.api.getSession` (the documented middleware,
 * mounted on that route only, so the peer's own /api/auth requests do not pay for it twice).
 * One change from the defaults, so both sides hash alike: passwords are hashed and verified with
 * sv-sdk's function at the same cost (OWASP scrypt). Run by the bench in a child process, like ours.
 *
 *   DATABASE_URL, BETTER_AUTH_SECRET, BETTER_AUTH_URL, HOST, PORT, NODE_ENV=production
 */
import { serve } from "@hono/node-server";
import { betterAuth } from "better-auth";
import { drizzleAdapter } from "better-auth/adapters/drizzle";
import { drizzle } from "drizzle-orm/postgres-js";
import { Hono } from "hono";
import postgres from "postgres";
import { hashPassword, OWASP_SCRYPT, verifyPassword } from "../../src/modules/auth/password.js";
import * as schema from "./schema.js";

const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set`);
  return value;
};

const sql = postgres(env("DATABASE_URL"), { onnotice: () => {} });
const db = drizzle(sql, { schema });

const auth = betterAuth({
  baseURL: env("BETTER_AUTH_URL"),
  secret: env("BETTER_AUTH_SECRET"),
  database: drizzleAdapter(db, {
    provider: "pg",
    schema: { user: schema.user, session: schema.session, account: schema.account, verification: schema.verification },
  }),
  emailAndPassword: {
    enabled: true,
    password: { hash: (password) => hashPassword(password, OWASP_SCRYPT), verify: verifyPassword },
  },
  session: { cookieCache: { enabled: true, maxAge: 5 * 60 } },
});

const app = new Hono();
app.get("/health", (c) => c.json({ ok: true }));
app.on(["POST", "GET"], "/api/auth/*", (c) => auth.handler(c.req.raw));
app.get("/api/me", async (c) => {
  const session = await auth.api.getSession({ headers: c.req.raw.headers });
  if (!session) return c.json({ error: "unauthorized" }, 401);
  return c.json({ user: session.user, session: session.session });
});

const server = serve({ fetch: app.fetch, hostname: env("HOST"), port: Number(env("PORT")) });
const stop = () => {
  server.close();
  void sql.end({ timeout: 5 }).then(() => process.exit(0));
  setTimeout(() => process.exit(1), 10_000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
