#!/usr/bin/env node
/**
 * `sv-sdk <command> [options]`: the operator's command-line tool. Each command lives in
 * `commands/<name>.ts` and is loaded only when run, so `--help` answers without loading the SDK.
 */
import { runCommand, type Command } from "./command.js";

const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  migrate: {
    summary: "Apply the database migrations to every database of the topology",
    load: async () => (await import("./commands/migrate.js")).migrateCommand,
  },
  "db:migrate": {
    summary: "The same as migrate",
    load: async () => (await import("./commands/migrate.js")).migrateCommand,
  },
  seed: {
    summary: "Seed the built-in roles and the default email templates",
    load: async () => (await import("./commands/seed.js")).seedCommand,
  },
  "create-admin": {
    summary: "Create a verified user who is a platform administrator",
    load: async () => (await import("./commands/create-admin.js")).createAdminCommand,
  },
  tenants: {
    summary: "List the tenants with their database, region and state",
    load: async () => (await import("./commands/tenants.js")).tenantsCommand,
  },
  "tenant:export": {
    summary: "Write a tenant's rows to a portable archive (gzip JSON lines)",
    load: async () => (await import("./commands/tenant-export.js")).tenantExportCommand,
  },
  "tenant:move": {
    summary: "Move a tenant's rows to another database of the topology",
    load: async () => (await import("./commands/tenant-move.js")).tenantMoveCommand,
  },
  "audit:verify": {
    summary: "Verify the audit trail's seals and name the first bad row",
    load: async () => (await import("./commands/audit-verify.js")).auditVerifyCommand,
  },
  "audit:retention": {
    summary: "Drop the monthly audit partitions older than the retention policy",
    load: async () => (await import("./commands/audit-retention.js")).auditRetentionCommand,
  },
  "email:worker": {
    summary: "Run the email dispatcher alone (delivery apart from the API)",
    load: async () => (await import("./commands/email-worker.js")).emailWorkerCommand,
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  return [
    "Usage: sv-sdk <command> [options]",
    "",
    "Commands:",
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    "",
    "Run 'sv-sdk <command> --help' for a command's options.",
    "Configuration comes from the environment (DATABASE_URL, DATABASE_TOPOLOGY, BETTER_AUTH_SECRET, …), as for `npm start`.",
    "Exit codes: 0 success, 1 the work failed, 2 wrong usage or configuration.",
  ].join("\n");
}

async function run(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    const out = name === undefined ? process.stderr : process.stdout;
    out.write(`${usage()}\n`);
    return name === undefined ? 2 : 0;
  }
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!entry) {
    process.stderr.write(`sv-sdk: unknown command '${name}'\n\n${usage()}\n`);
    return 2;
  }
  return runCommand(await entry.load(), args);
}

process.exitCode = await run(process.argv.slice(2));
