import { parseOptions, type Command } from "../command.js";

export const auditVerifyCommand: Command = {
  name: "audit:verify",
  help: `
Usage: sv-sdk audit:verify [--seal]

Checks every audit seal chain and every sealed row of every configured database (DATABASE_URL,
each database of DATABASE_TOPOLOGY, or the embedded PostgreSQL) and prints the result as JSON on stdout, with a one-line
summary on stderr: OK with the row and seal counts, or the first altered, missing or reordered row.

  --seal   seal the committed rows first

Exit codes: 0 the trail is intact, 1 a row was altered, is missing or was slipped in,
2 bad options, or verification could not run.`,
  async run(args) {
    parseOptions(args, { seal: { type: "boolean" } });
    // The audit module's own entry point (npm run audit:verify) does the work; it reads --seal from
    // the process arguments and reports through process.exitCode.
    await import("../audit-verify.js");
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  },
};
