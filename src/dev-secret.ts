/**
 * Outside production, `npm start` needs no BETTER_AUTH_SECRET or EMAIL_UNSUBSCRIBE_SECRET: each is
 * generated on first start and kept in the data directory (mode 0600, never committed), so sessions
 * and unsubscribe links survive restarts. Production refuses to start without real ones (config.ts).
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

export async function developmentSecret(dataDir: string, name = "auth-secret"): Promise<string> {
  const file = join(dataDir, name);
  if (existsSync(file)) return (await readFile(file, "utf8")).trim();
  await mkdir(dataDir, { recursive: true });
  const secret = randomBytes(32).toString("base64url");
  await writeFile(file, secret, { mode: 0o600 });
  return secret;
}
