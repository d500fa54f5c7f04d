/**
 * createSdk in production refuses to run as the owner: a pool that only assumes sv_app can be talked
 * back into the owner by injected SQL (`SET ROLE NONE`).
 */
import { describe, expect, inject, it } from "vitest";
import { createSdk } from "./index.js";

const secret = "a-production-secret-of-at-least-32-characters-0123";

describe("createSdk in production", () => {
  it("refuses a database without a runtime login, naming it", () => {
    const { url } = inject("svTestDatabase");
    expect(() => createSdk({ databaseUrl: url, environment: "production", auth: { secret } })).toThrow(
      /in production every database needs a runtime login .* missing for 'main'/,
    );
    expect(() =>
      createSdk({
        environment: "production",
        auth: { secret },
        topology: { databases: { main: { url, appUrl: inject("svTestDatabase").appUrl }, eu: { url } }, schemas: {} },
      }),
    ).toThrow(/missing for 'eu'/);
  });

  it("starts when every database has one", async () => {
    const { url, appUrl } = inject("svTestDatabase");
    const sdk = createSdk({ databaseUrl: url, databaseAppUrl: appUrl, environment: "production", auth: { secret } });
    try {
      expect(sdk.environment).toBe("production");
    } finally {
      await sdk.close();
    }
  });
});
