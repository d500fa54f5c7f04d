import { randomBytes, randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import { AppError } from "../../errors.js";
import { users } from "../../modules/auth/index.js";
import {
  cliConfig,
  CommandFailure,
  parseOptions,
  requireMigrated,
  UsageError,
  withSdk,
  withTopology,
  type Command,
} from "../command.js";

const MIN_PASSWORD = 8;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY)
    throw new UsageError(
      '--password-stdin reads the password from a pipe, e.g. `printf %s "$PW" | sv-sdk create-admin …`',
    );
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  // One trailing newline belongs to `echo`, not to the password.
  return Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
}

export const createAdminCommand: Command = {
  name: "create-admin",
  help: `
Usage: sv-sdk create-admin --email <email> --name <name> [--password <password> | --password-stdin]

Creates a user with a verified email address and makes them a platform administrator: the global
\`owner\` role (every permission in every tenant) and better-auth's \`admin\` role (user management,
bans, impersonation). One unit of work, audited as \`user.created_by_cli\`: all of it or nothing.

  --email <email>      the administrator's email address (required)
  --name <name>        their display name (required)
  --password <pw>      at least ${MIN_PASSWORD} characters (visible in the shell history: prefer --password-stdin)
  --password-stdin     read the password from standard input
  Without a password, one is generated and printed once.

Exit codes: 0 created, 1 failed (e.g. the email is taken), 2 bad options or configuration.`,
  async run(args) {
    const options = parseOptions(args, {
      email: { type: "string" },
      name: { type: "string" },
      password: { type: "string" },
      "password-stdin": { type: "boolean" },
    });
    const email = options.email?.trim();
    const name = options.name?.trim();
    if (!email) throw new UsageError("--email is required");
    if (!EMAIL.test(email)) throw new UsageError(`--email '${email}' is not an email address`);
    if (!name) throw new UsageError("--name is required");
    if (options.password !== undefined && options["password-stdin"])
      throw new UsageError("give --password or --password-stdin, not both");
    let password = options["password-stdin"] ? await readStdin() : options.password;
    const generated = password === undefined;
    password ??= randomBytes(18).toString("base64url");
    if (password.length < MIN_PASSWORD)
      throw new UsageError(`the password must be at least ${MIN_PASSWORD} characters`);
    const config = cliConfig();

    const user = await withTopology(config, false, async (topology) => {
      await requireMigrated(topology);
      return withSdk(config, topology, (sdk) =>
        sdk.withContext({ actor: { type: "system", id: "cli" }, requestId: `cli-${randomUUID()}` }, () =>
          sdk.transaction(async () => {
            const created = await sdk.auth.createUser({ email, name, password: password!, emailVerified: true });
            await sdk.permissions.assignRole(created.id, "owner");
            await sdk.router.db("auth").update(users).set({ role: "admin" }).where(eq(users.id, created.id));
            await sdk.audit.recordAuditEvent({
              action: "user.created_by_cli",
              tenantId: null,
              target: { type: "user", id: created.id },
              metadata: {
                email: created.email,
                globalRoles: ["owner"],
                authRole: "admin",
                passwordGenerated: generated,
              },
            });
            return created;
          }),
        ),
      ).catch((error: unknown) => {
        if (error instanceof AppError && error.code === "CONFLICT")
          throw new CommandFailure(`a user with the email ${email.toLowerCase()} already exists`);
        throw error;
      });
    });

    process.stdout.write(`created platform administrator ${user.email} (id ${user.id})\n`);
    if (generated) process.stdout.write(`generated password (shown once): ${password}\n`);
    return 0;
  },
};
