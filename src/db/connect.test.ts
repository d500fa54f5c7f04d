/**
 * Where entry points connect: production refuses a runtime without a login of its own; the embedded
 * default makes one (sv_app, its password kept beside the superuser's) and migrating sets it up.
 */
import { stat, mkdtemp, readFile, rm, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../config.js";
import { resolveDatabase } from "./connect.js";
import { migrateTopology } from "./migrate.js";

const production = {
  NODE_ENV: "production",
  BETTER_AUTH_SECRET: "s".repeat(32),
  EMAIL_TRANSPORT: "log",
} as const;
const noLog = () => {};

describe("resolveDatabase", () => {
  it("refuses production without DATABASE_APP_URL, with the sentence saying why", async () => {
    const config = loadConfig({ ...production, DATABASE_URL: "postgres://owner:pw@db.example/sv" });
    await expect(resolveDatabase(config, noLog)).rejects.toThrow(
      /^DATABASE_APP_URL is required when NODE_ENV=production: the API must not log in as the owner of DATABASE_URL/,
    );
    const withLogin = loadConfig({
      ...production,
      DATABASE_URL: "postgres://owner:pw@db.example/sv",
      DATABASE_APP_URL: "postgres://sv_app:pw@db.example/sv",
    });
    expect((await resolveDatabase(withLogin, noLog)).topology.databases.main!.appUrl).toBe(
      "postgres://sv_app:pw@db.example/sv",
    );
  });

  it("refuses a production topology with a database that has no appUrl, naming it", async () => {
    const topology = {
      databases: {
        main: { url: "postgres://owner:pw@db.example/sv", appUrl: "postgres://sv_app:pw@db.example/sv" },
        audit_store: { url: "postgres://owner:pw@audit.example/sv" },
      },
    };
    const config = loadConfig({ ...production, DATABASE_TOPOLOGY: JSON.stringify(topology) });
    await expect(resolveDatabase(config, noLog)).rejects.toThrow(
      /every database of DATABASE_TOPOLOGY needs an appUrl .*missing for: audit_store$/,
    );
  });

  it("outside production, passes an owner-only DATABASE_URL through (the pool warns)", async () => {
    const config = loadConfig({ NODE_ENV: "development", DATABASE_URL: "postgres://owner:pw@db.example/sv" });
    expect((await resolveDatabase(config, noLog)).topology.databases.main!.appUrl).toBeUndefined();
  });

  it("gives the embedded default an sv_app login, its password kept beside the superuser's (0600), set up by migrating", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "sv-sdk-connect-"));
    // As root the cluster belongs to a `postgres` user, who must reach it.
    await chmod(dataDir, 0o755);
    const config = loadConfig({ NODE_ENV: "development", DATA_DIR: dataDir });
    try {
      const first = await resolveDatabase(config, noLog);
      let appUrl: URL;
      try {
        appUrl = new URL(first.topology.databases.main!.appUrl!);
        expect(appUrl.username).toBe("sv_app");
        const file = join(dataDir, "postgres", "app-password");
        expect(decodeURIComponent(appUrl.password)).toBe((await readFile(file, "utf8")).trim());
        expect((await stat(file)).mode & 0o777).toBe(0o600);
        expect((await stat(join(dataDir, "postgres", "superuser-password"))).mode & 0o777).toBe(0o600);

        await migrateTopology(first.topology);
        const app = postgres(appUrl.toString(), { max: 1, onnotice: () => {} });
        try {
          const [who] = await app<{ session_user: string; current_user: string }[]>`select session_user, current_user`;
          expect(who).toEqual({ session_user: "sv_app", current_user: "sv_app" });
          await expect(app`set role postgres`).rejects.toMatchObject({ code: "42501" });
        } finally {
          await app.end({ timeout: 5 });
        }
      } finally {
        await first.embedded?.stop();
      }
      // The next start finds the same password, and the login as it left it.
      const again = await resolveDatabase(config, noLog);
      try {
        expect(new URL(again.topology.databases.main!.appUrl!).password).toBe(appUrl.password);
        expect((await migrateTopology(again.topology))[0]).toMatchObject({ database: "main" });
      } finally {
        await again.embedded?.stop();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});
