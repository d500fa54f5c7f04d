import { cliConfig, parseOptions, requireMigrated, withSdk, withTopology, type Command } from "../command.js";

export const seedCommand: Command = {
  name: "seed",
  help: `
Usage: sv-sdk seed

Seeds the built-in global roles (owner, admin, member, auditor) and the default email templates. Safe
to run any number of times: built-in roles are reset to their shipped grants, templates are added if
missing. \`npm start\` does this too; run it after \`sv-sdk migrate\` on a database the API has not
started on.

Exit codes: 0 seeded, 1 failed (e.g. the database is not migrated), 2 bad options or configuration.`,
  async run(args) {
    parseOptions(args, {});
    const config = cliConfig();
    await withTopology(config, false, async (topology) => {
      await requireMigrated(topology);
      await withSdk(config, topology, (sdk) => sdk.seed());
    });
    process.stdout.write("seeded built-in roles and default email templates\n");
    return 0;
  },
};
