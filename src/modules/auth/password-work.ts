/**
 * Password work happens before the request's unit of work opens.
 *
 * A hash at OWASP's scrypt cost is ~100 ms of a core. Done inside better-auth's handler it ran inside
 * the request's transaction, holding a pooled connection for the whole hash: a burst of sign-ins
 * held every connection while they waited for CPU, and everything else timed out. Here, for the
 * routes that hash, the hash (sign-up, reset) or the verification (sign-in: one indexed read of the
 * stored hash, outside any transaction) is computed first, at most `concurrency` at once — the cores
 * cannot hash faster anyway, and a request waiting here holds no connection. better-auth's own call
 * inside the unit then finds the answer ready.
 *
 * Timing stays even: a sign-in for an unknown email hashes the password once, as one for a known
 * email verifies it once (better-auth does the same inside, and finds both answers ready).
 */
import { availableParallelism } from "node:os";
import { sql } from "drizzle-orm";
import { ContextSlot } from "../../db/context-storage.js";
import type { ModuleContext } from "../../db/module.js";
import { currentContext } from "../../db/unit-of-work.js";
import { hashPassword, verifyPassword, type PasswordCost } from "./password.js";

/** Answers computed for this request: hashes by password, verifications by hash and password. */
interface PasswordWork {
  hashed: Map<string, string>;
  verified: Map<string, boolean>;
}

const slot = new ContextSlot<PasswordWork>("sv-sdk password work");
const verificationKey = (hash: string, password: string) => `${hash}\u0000${password}`;

/** better-auth's `emailAndPassword.password` functions: this request's answers when ready, else computed. */
export function passwordFunctions(cost: PasswordCost) {
  return {
    hash(password: string): Promise<string> {
      const work = slot.getStore();
      const ready = work?.hashed.get(password);
      if (ready !== undefined) {
        work!.hashed.delete(password);
        return Promise.resolve(ready);
      }
      return hashPassword(password, cost);
    },
    verify(input: { hash: string; password: string }): Promise<boolean> {
      const work = slot.getStore();
      const key = verificationKey(input.hash, input.password);
      const ready = work?.verified.get(key);
      if (ready !== undefined) {
        work!.verified.delete(key);
        return Promise.resolve(ready);
      }
      return verifyPassword(input);
    },
  };
}

/** At most `size` at once; the others wait in order, each until the request's deadline. */
function createSemaphore(size: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else active--;
  };
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active < size) active++;
    else {
      const deadline = currentContext().deadline;
      let turn!: () => void;
      const admitted = new Promise<void>((resolve) => (turn = resolve));
      waiting.push(turn);
      try {
        await (deadline ? deadline.race(admitted) : admitted);
      } catch (error) {
        // Gave up waiting: if the turn came meanwhile, pass it on.
        const at = waiting.indexOf(turn);
        if (at >= 0) waiting.splice(at, 1);
        else release();
        throw error;
      }
    }
    try {
      return await fn();
    } finally {
      release();
    }
  };
}

type Body = Record<string, unknown>;
const text = (body: Body, field: string) => (typeof body[field] === "string" ? (body[field] as string) : undefined);

/** The routes (paths below /api/auth, POST) whose body may call for a hash or a verification. */
const HASHING_PATHS: ReadonlySet<string> = new Set([
  "/sign-up/email",
  "/sign-in/email",
  "/reset-password",
  "/change-password",
]);

/** Whether a POST to `path` (below /api/auth) may hash: only then is its body read ahead. */
export const hashesPasswords = (path: string): boolean => HASHING_PATHS.has(path);

export interface PasswordWorkOptions {
  context: ModuleContext;
  cost: PasswordCost;
  /** Hashes in flight at once. Default: the cores. */
  concurrency?: number;
}

/**
 * The password work of `/api/auth/*`: `run(path, body, next)` computes what the route's body calls
 * for (at most `concurrency` at once), then runs `next` with the answers ready for better-auth.
 * Called before the unit of work opens.
 */
export function createPasswordWork(options: PasswordWorkOptions) {
  const { context, cost } = options;
  const gate = createSemaphore(options.concurrency ?? Math.max(1, availableParallelism()));

  const storedHash = async (email: string): Promise<string | undefined> => {
    const [row] = await context.db().execute<{ password: string | null }>(sql`
      select a.password from auth.users u
        join auth.accounts a on a.user_id = u.id and a.provider_id = 'credential' and a.account_id = u.id::text
       where u.email = ${email}
       limit 1`);
    return row?.password ?? undefined;
  };

  /** The work a route's body calls for; undefined when it hashes nothing. */
  const planFor = (path: string, body: Body): ((work: PasswordWork) => Promise<void>) | undefined => {
    const hashing = (password: string | undefined) =>
      password
        ? async (work: PasswordWork) => void work.hashed.set(password, await hashPassword(password, cost))
        : undefined;
    switch (path) {
      case "/sign-up/email":
        return hashing(text(body, "password"));
      case "/reset-password":
      case "/change-password":
        return hashing(text(body, "newPassword"));
      case "/sign-in/email": {
        const email = text(body, "email");
        const password = text(body, "password");
        if (!email || !password || password.length > 1024) return undefined;
        return async (work) => {
          const hash = await storedHash(email.toLowerCase());
          if (hash === undefined) work.hashed.set(password, await hashPassword(password, cost));
          else work.verified.set(verificationKey(hash, password), await verifyPassword({ hash, password }));
        };
      }
      default:
        return undefined;
    }
  };

  return {
    /** `body` is the request's parsed JSON (anything else: better-auth's to refuse, no work here). */
    async run<T>(path: string, body: unknown, next: () => Promise<T>): Promise<T> {
      const plan = body && typeof body === "object" ? planFor(path, body as Body) : undefined;
      if (!plan) return next();
      const work: PasswordWork = { hashed: new Map(), verified: new Map() };
      await gate(() => plan(work));
      return slot.run(work, next);
    },
  };
}

export type PasswordWorker = ReturnType<typeof createPasswordWork>;
