/**
 * sv-sdk's server as users run it in production: `src/server.ts` (what `npm start` runs) in a child
 * process, configured by its environment only — NODE_ENV=production (secure cookies, email
 * verification required, OWASP password hashing), rate limiting on (better-auth's rules, stored in
 * PostgreSQL), the cookie cache on, the default pool (10), the email dispatcher on, sending through
 * the real Resend SDK to a local stand-in, and TRUST_PROXY=1: the bench stands in for the reverse
 * proxy that sets X-Forwarded-For, so each simulated client has an address of its own.
 */
import { randomBytes } from "node:crypto";
import { singleDatabase } from "../src/db/topology.js";
import type { BenchContext, ServerProcess } from "./types.js";

/** The origin the server is told it is served from; browser-like requests send it as Origin. */
export const PUBLIC_ORIGIN = "https://app.example.test";

/** The pool size the server's topology gets for this database (the default: DATABASE_URL sets no pool). */
export const poolMaxOf = (databaseUrl: string) => singleDatabase(databaseUrl).databases.main!.pool.max;

export interface SvServer extends ServerProcess {
  /** The secret its cookies are signed with. */
  secret: string;
  /** Its runtime login (an in-process SDK in production needs one too). */
  appUrl: string;
}

export async function startSvServer(
  ctx: BenchContext,
  options: { databaseUrl: string; resendUrl: string },
): Promise<SvServer> {
  const secret = randomBytes(32).toString("base64url");
  // Production runs as a login of sv_app (it refuses the owner's): the migration at start-up sets this
  // password. The bench's other SDKs log in as the owner and are unaffected.
  const appUrl = new URL(options.databaseUrl);
  appUrl.username = "sv_app";
  appUrl.password = randomBytes(18).toString("base64url");
  const server = await ctx.startServer({
    entry: "src/server.ts",
    env: {
      NODE_ENV: "production",
      DATABASE_URL: options.databaseUrl,
      DATABASE_APP_URL: appUrl.toString(),
      BETTER_AUTH_SECRET: secret,
      PUBLIC_URL: PUBLIC_ORIGIN,
      TRUST_PROXY: "1",
      RESEND_API_KEY: "re_bench",
      RESEND_BASE_URL: options.resendUrl,
      EMAIL_UNSUBSCRIBE_SECRET: randomBytes(32).toString("base64url"),
      EMAIL_FROM: "Bench <bench@example.test>",
    },
  });
  return Object.assign(server, { secret, appUrl: appUrl.toString() });
}
