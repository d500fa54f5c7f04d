import { describe, expect, it } from "vitest";
import { createCoreRouter } from "../core-modules.js";
import { databaseOf, parseTopology, singleDatabase } from "./topology.js";

const url = "postgres://owner:pw@127.0.0.1:5432/sv_sdk";

describe("parseTopology", () => {
  it("fills in pool defaults and places every schema on main by default", () => {
    const topology = parseTopology({ databases: { main: { url } } });
    expect(topology.databases.main).toEqual({
      url,
      replicas: [],
      pool: {
        max: 10,
        idleTimeoutSeconds: 30,
        connectTimeoutSeconds: 3,
        acquireTimeoutMs: 5_000,
        statementTimeoutMs: 5_000,
        lockTimeoutMs: 2_000,
        idleInTransactionTimeoutMs: 10_000,
        transactionTimeoutMs: 30_000,
        queryTimeoutMs: 10_000,
      },
    });
    expect(databaseOf(topology, "audit")).toBe("main");
    expect(singleDatabase(url)).toEqual(topology);
  });

  it("places a schema on a database of its own", () => {
    const topology = parseTopology({
      databases: { main: { url }, audit_store: { url } },
      schemas: { audit: "audit_store" },
    });
    expect(databaseOf(topology, "audit")).toBe("audit_store");
    expect(databaseOf(topology, "email")).toBe("main");
  });

  it("requires a database named main", () => {
    expect(() => parseTopology({ databases: { other: { url } } })).toThrow(
      "Invalid database topology — databases.main: a database named 'main' is required",
    );
  });

  it("refuses a schema placed on a database it does not define", () => {
    expect(() => parseTopology({ databases: { main: { url } }, schemas: { email: "mail_store" } })).toThrow(
      "schemas.email: schema 'email' is placed on database 'mail_store', which the topology does not define",
    );
  });

  it("keeps the control plane on main, and names only schemas a module owns (checked against the modules)", () => {
    const authElsewhere = parseTopology({
      databases: { main: { url }, auth_store: { url } },
      schemas: { auth: "auth_store" },
    });
    expect(() => createCoreRouter(authElsewhere)).toThrow(
      "schemas.auth: the 'auth' schema holds the control plane and must stay on 'main'",
    );
    const unknown = parseTopology({ databases: { main: { url }, other: { url } }, schemas: { billing: "other" } });
    expect(() => createCoreRouter(unknown)).toThrow(/schemas\.billing: no module owns a schema 'billing'/);
  });

  it("sends new tenants to main unless tenants.defaultDatabase names a database of the topology", () => {
    expect(parseTopology({ databases: { main: { url } } }).tenants.defaultDatabase).toBe("main");
    const topology = parseTopology({ databases: { main: { url }, eu: { url } }, tenants: { defaultDatabase: "eu" } });
    expect(topology.tenants.defaultDatabase).toBe("eu");
    expect(() => parseTopology({ databases: { main: { url } }, tenants: { defaultDatabase: "eu" } })).toThrow(
      "tenants.defaultDatabase: new tenants go to database 'eu', which the topology does not define",
    );
  });

  it("refuses a URL that is not a PostgreSQL URL, and lists every problem", () => {
    let message = "";
    try {
      parseTopology({ databases: { main: { url: "mysql://x" } }, schemas: { audit: "nowhere" } });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain("databases.main.url: must be a postgres:// or postgresql:// connection URL");
    expect(message).toContain("schemas.audit: schema 'audit' is placed on database 'nowhere'");
  });

  it("refuses a pool outside its bounds", () => {
    expect(() => parseTopology({ databases: { main: { url, pool: { max: 0 } } } })).toThrow(
      /databases\.main\.pool\.max/,
    );
  });
});
