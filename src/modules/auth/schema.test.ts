/**
 * Our drizzle tables against better-auth's own table list for the plugins we use: a better-auth
 * upgrade that adds a field or a model fails here instead of in a sign-up.
 */
import { getAuthTables } from "better-auth/db";
import { admin, bearer, jwt, organization, twoFactor } from "better-auth/plugins";
import { getTableColumns, type Table } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import * as schema from "./schema.js";

const authTables = getAuthTables({
  plugins: [organization(), admin(), jwt(), bearer(), twoFactor()],
  rateLimit: { storage: "database" },
});

/** better-auth model -> our table export (plural, as `usePlural: true` in the adapter). */
const TABLE_OF: Record<string, keyof typeof schema> = {
  user: "users",
  session: "sessions",
  account: "accounts",
  verification: "verifications",
  organization: "organizations",
  member: "members",
  invitation: "invitations",
  jwks: "jwks",
  twoFactor: "twoFactors",
  rateLimit: "rateLimits",
};

describe("auth schema matches better-auth", () => {
  it("better-auth asks for exactly the models we map", () => {
    expect(Object.keys(authTables).sort()).toEqual(Object.keys(TABLE_OF).sort());
  });

  it.each(Object.entries(TABLE_OF))("%s has a table (%s) with every field as a column", (model, tableKey) => {
    // biome-ignore lint/performance/noDynamicNamespaceImportAccess: a test walks every table of the schema
    const table = schema[tableKey] as Table;
    const columns = getTableColumns(table);
    const fields = authTables[model]!.fields;
    expect(columns, `${tableKey} has an id`).toHaveProperty("id");
    for (const [field, attribute] of Object.entries(fields)) {
      expect(columns, `${tableKey}.${field} is missing`).toHaveProperty(field);
      if (attribute.required) expect(columns[field]!.notNull, `${tableKey}.${field} must be NOT NULL`).toBe(true);
    }
  });
});
