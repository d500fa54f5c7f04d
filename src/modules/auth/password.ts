/**
 * Password hashing at the OWASP Password Storage Cheat Sheet's scrypt parameters (N=2^17, r=8, p=1),
 * with node:crypto — no native dependency. better-auth's default (N=2^14, r=16) is below them.
 * Hashes carry their parameters (`$scrypt$ln=17,r=8,p=1$salt$key`), so a cost change never breaks
 * old hashes, and better-auth's own `salt:key` hashes still verify.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from "node:crypto";
import { verifyPassword as verifyBetterAuthHash } from "better-auth/crypto";

export interface PasswordCost {
  /** log2 of N. */
  ln: number;
  r: number;
  p: number;
}

/** OWASP minimum for scrypt. */
export const OWASP_SCRYPT: PasswordCost = { ln: 17, r: 8, p: 1 };
/** For test suites only: 64x cheaper. Never use in production (createAuthModule refuses it there). */
export const TEST_ONLY_SCRYPT: PasswordCost = { ln: 11, r: 8, p: 1 };

const KEY_LENGTH = 64;

function derive(password: string, salt: Buffer, cost: PasswordCost): Promise<Buffer> {
  const N = 2 ** cost.ln;
  const options: ScryptOptions = { N, r: cost.r, p: cost.p, maxmem: 256 * N * cost.r * cost.p };
  return new Promise((resolve, reject) =>
    scrypt(password.normalize("NFKC"), salt, KEY_LENGTH, options, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
}

export async function hashPassword(password: string, cost: PasswordCost = OWASP_SCRYPT): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, cost);
  return `$scrypt$ln=${cost.ln},r=${cost.r},p=${cost.p}$${salt.toString("base64")}$${key.toString("base64")}`;
}

const PHC = /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/;

export async function verifyPassword({ hash, password }: { hash: string; password: string }): Promise<boolean> {
  const match = PHC.exec(hash);
  if (!match) return verifyBetterAuthHash({ hash, password });
  const [, ln, r, p, salt, key] = match;
  const cost = { ln: Number(ln), r: Number(r), p: Number(p) };
  // Refuse absurd parameters from a tampered row instead of allocating gigabytes.
  if (cost.ln > 22 || cost.r > 32 || cost.p > 16) return false;
  const expected = Buffer.from(key!, "base64");
  const actual = await derive(password, Buffer.from(salt!, "base64"), cost);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
