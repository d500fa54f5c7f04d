import { parseOptions, UsageError, type Command } from "../command.js";

export const auditRetentionCommand: Command = {
  name: "audit:retention",
  help: `
Usage: sv-sdk audit:retention [--days <n>]

Drops the monthly audit partitions entirely older than the retention policy (default 400 days, or
AUDIT_RETENTION_DAYS) and records an \`audit.retention_applied\` event. Connects with DATABASE_URL as
given — a login that is a member of sv_maintenance, or the owner — never as the runtime role.

  --days <n>   keep this many days of history

Exit codes: 0 applied (or nothing to drop), 1 failed, 2 bad options or configuration.`,
  async run(args) {
    const { days } = parseOptions(args, { days: { type: "string" } });
    if (days !== undefined && !/^[1-9]\d*$/.test(days))
      throw new UsageError(`--days must be a positive whole number of days, got '${days}'`);
    // The audit module's own entry point (npm run audit:retention) does the work and reads --days.
    await import("../audit-retention.js");
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  },
};
