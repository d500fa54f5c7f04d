/**
 * The database roles hold against injected SQL (issue 14). Logged in as each role — sv_app through the
 * runtime's own login, sv_readonly and sv_auditor through logins that are members of them, as an
 * operator would create — every escape is tried, and each must be refused: becoming the owner,
 * reading a secret, writing the audit trail, and, inside a tenant, touching platform rows or another
 * tenant's. The rows are committed in a database of its own, so each login sees them.
 */
import { randomBytes, randomUUID } from "node:crypto";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createApp } from "../app.js";
import { createSdk, type Sdk } from "../index.js";
import { createIsolatedDatabase, type IsolatedDatabase } from "../testing/database.js";
import { createTestTenant, createTestUser, cheapHashingTestSdkOptions } from "../testing/factories.js";

const ROLES = ["sv_app", "sv_readonly", "sv_auditor"] as const;
type Role = (typeof ROLES)[number];

/** What neither sv_readonly nor sv_auditor may read. */
const SECRETS: Record<string, string[]> = {
  "auth.sessions": ["token"],
  "auth.accounts": ["password", "access_token", "refresh_token", "id_token"],
  "auth.verifications": ["identifier", "value"],
  "auth.two_factors": ["secret", "backup_codes"],
  "auth.jwks": ["private_key"],
  "email.email_sends": ["html", "text", "headers"],
  "email.dev_messages": ["html", "text", "headers"],
};

let database: IsolatedDatabase;
let owner: postgres.Sql;
let sdk: Sdk;
const logins = {} as Record<Role, postgres.Sql>;
const createdRoles: string[] = [];
/** The role owning sv-sdk's tables (and the database): what no login may become. */
let ownerRole: string;
const ids = { tenantA: "", tenantB: "", userA: "", userB: "", sessionB: "", invitationB: "", sendB: "" };

/** `role`'s login URL: the runtime's own for sv_app, a fresh member login for the others. */
async function loginUrl(role: Role): Promise<string> {
  if (role === "sv_app") return database.appUrl;
  const name = `${role}_login_${randomBytes(4).toString("hex")}`;
  const password = randomBytes(16).toString("hex");
  await owner.unsafe(`create role ${name} login password '${password}' in role ${role}`);
  createdRoles.push(name);
  const url = new URL(database.url);
  url.username = name;
  url.password = password;
  return url.toString();
}

beforeAll(async () => {
  database = await createIsolatedDatabase(inject("svTestDatabase"));
  owner = postgres(database.url, { max: 2, onnotice: () => {} });
  const [table] = await owner<
    { tableowner: string }[]
  >`select tableowner from pg_tables where schemaname = 'auth' and tablename = 'users'`;
  ownerRole = table!.tableowner;

  // Two tenants with members, an invitation, a session acting in B, mail sent in B, a role of B and
  // permission_cache rows of B and global ones — all committed.
  sdk = createSdk(cheapHashingTestSdkOptions(database));
  const ada = await createTestUser(sdk);
  const bob = await createTestUser(sdk);
  const { tenant: a } = await createTestTenant(sdk, ada);
  const { tenant: b } = await createTestTenant(sdk, bob);
  Object.assign(ids, { tenantA: a.id, tenantB: b.id, userA: ada.user.id, userB: bob.user.id });
  await owner`update auth.sessions set active_organization_id = ${b.id} where user_id = ${bob.user.id}`;
  const [session] = await owner<{ id: string }[]>`select id from auth.sessions where user_id = ${bob.user.id} limit 1`;
  const [invitation] = await owner<{ id: string }[]>`
    insert into auth.invitations (organization_id, email, role, status, expires_at, inviter_id)
    values (${b.id}, 'invited@example.test', 'member', 'pending', now() + interval '1 day', ${bob.user.id}) returning id`;
  const [send] = await owner<{ id: string }[]>`
    insert into email.email_sends (tenant_id, to_address, template_key, category, subject, html, text, headers)
    values (${b.id}, 'b@example.test', 'welcome', 'account', 'Hi', '<a href="https://x/verify?token=t">', 'token=t', '{"List-Unsubscribe": "<https://x/u?sig=s>"}')
    returning id`;
  Object.assign(ids, { sessionB: session!.id, invitationB: invitation!.id, sendB: send!.id });
  await owner`insert into email.dev_messages (send_id, to_address, from_address, subject, html, text) values (${ids.sendB}, 'b@example.test', 'f@example.test', 'Hi', 'html', 'text')`;
  await owner`insert into email.email_events (provider_event_id, send_id, type, payload) values (${randomUUID()}, ${ids.sendB}, 'email.sent', '{}')`;
  await owner`insert into permissions.permission_cache (user_id, tenant_id, permissions)
              values (${bob.user.id}, ${b.id}, '{x:y}'), (${bob.user.id}, null, '{x:y}')`;
  await owner`insert into permissions.roles (tenant_id, name) values (${b.id}, 'b-only')`;

  for (const role of ROLES) logins[role] = postgres(await loginUrl(role), { max: 1, onnotice: () => {} });
}, 60_000);

afterAll(async () => {
  await sdk?.close();
  for (const role of ROLES) await logins[role]?.end({ timeout: 5 });
  for (const name of createdRoles) await owner.unsafe(`drop role if exists ${name}`);
  await owner?.end({ timeout: 5 });
  await database?.drop();
});

class Rollback extends Error {}

/**
 * Runs the statements as `role` in a transaction that is always rolled back, inside tenant `tenant`
 * when given (as the router sets it). Resolves with the last one's rows, or with the SQLSTATE the
 * first failing one failed with.
 */
async function attempt(
  role: Role,
  statements: string | string[],
  tenant?: string,
): Promise<{ rows: unknown[] } | { code: string }> {
  let outcome: { rows: unknown[] } | { code: string } = { rows: [] };
  try {
    await logins[role].begin(async (tx) => {
      if (tenant) await tx`select set_config('sv.tenant_id', ${tenant}, true)`;
      for (const statement of [statements].flat()) outcome = { rows: [...(await tx.unsafe(statement))] };
      throw new Rollback();
    });
  } catch (error) {
    if (!(error instanceof Rollback)) return { code: (error as { code?: string }).code ?? String(error) };
  }
  return outcome;
}

/** Refused: denied (42501, which row-level security's WITH CHECK raises too), or nothing seen or changed. */
function expectRefused(outcome: { rows: unknown[] } | { code: string }, what: string) {
  if ("code" in outcome) expect(outcome.code, what).toBe("42501");
  else expect(outcome.rows, what).toEqual([]);
}

describe("the runtime login", () => {
  it("is what the SDK's pool logs in as: sv_app, a member of no other role", async () => {
    const [who] = await sdk.router.pool("main").sql<
      { session_user: string; current_user: string }[]
    >`select session_user, current_user`;
    expect(who).toEqual({ session_user: "sv_app", current_user: "sv_app" });
    const roles = await logins.sv_app<{ rolname: string }[]>`
      select rolname from pg_roles where pg_has_role(session_user, oid, 'MEMBER') order by 1`;
    expect(roles.map((r) => r.rolname)).toEqual(["sv_app"]);
  });
});

describe.each(ROLES)("logged in as %s", (role) => {
  it("cannot become the owner, a superuser or anyone else", async () => {
    const self = role === "sv_app" ? "sv_app" : createdRoles.find((r) => r.startsWith(role))!;
    for (const statement of [
      `set role ${ownerRole}`,
      "set role postgres",
      "set role sv_maintenance",
      `set session authorization ${ownerRole}`,
      `select set_config('role', '${ownerRole}', false)`,
      `select set_config('session_authorization', '${ownerRole}', false)`,
    ]) {
      expect(await attempt(role, statement), statement).toMatchObject({ code: "42501" });
    }
    // What is not refused changes nothing: back to the login itself, with no power.
    for (const statement of ["reset role", "set role none", "reset session authorization"]) {
      const outcome = await attempt(role, [
        statement,
        "select current_user::text as who, rolsuper, rolbypassrls from pg_roles where rolname = current_user",
      ]);
      expect(outcome, statement).toEqual({ rows: [{ who: self, rolsuper: false, rolbypassrls: false }] });
    }
  });

  it("cannot UPDATE, DELETE or TRUNCATE the audit trail", async () => {
    await owner`insert into audit.audit_logs (actor_type, action) values ('system', 'roles.test')`;
    for (const statement of [
      "update audit.audit_logs set action = 'tampered'",
      "delete from audit.audit_logs",
      "truncate audit.audit_logs",
      "update audit.audit_seals set seal_hash = 'x'",
      "delete from audit.audit_seals",
    ]) {
      for (const tenant of [undefined, "*"]) {
        expect(await attempt(role, statement, tenant), `${statement} (tenant ${tenant ?? "unset"})`).toMatchObject({
          code: "42501",
        });
      }
    }
  });

  it("inside a tenant, touches neither platform rows nor another tenant's", async () => {
    const { tenantA: a, tenantB: b, userA, userB, sessionB, invitationB, sendB } = ids;
    const inA = (statement: string) => attempt(role, statement, a);
    const cases: [string, string][] = [
      [
        "update a default template",
        "update email.email_templates set subject = 'pwned' where tenant_id is null returning id",
      ],
      ["delete a default template", "delete from email.email_templates where tenant_id is null returning id"],
      [
        "insert a default template",
        "insert into email.email_templates (tenant_id, key, subject, html, text) values (null, 'pwned', 's', 'h', 't') returning id",
      ],
      [
        "move a default template into the tenant",
        `update email.email_templates set tenant_id = '${a}' where tenant_id is null returning id`,
      ],
      [
        "insert a global permission_cache row",
        `insert into permissions.permission_cache (user_id, tenant_id, permissions) values ('${userA}', null, '{*}') returning 1`,
      ],
      [
        "update global permission_cache rows",
        "update permissions.permission_cache set permissions = '{*}' where tenant_id is null returning 1",
      ],
      [
        "insert another tenant's permission_cache row",
        `insert into permissions.permission_cache (user_id, tenant_id, permissions) values ('${userA}', '${b}', '{*}') returning 1`,
      ],
      ["read another tenant's permission_cache", `select 1 from permissions.permission_cache where tenant_id = '${b}'`],
      ["read another tenant's members", `select 1 from auth.members where organization_id = '${b}'`],
      [
        "update another tenant's members",
        `update auth.members set role = 'owner' where organization_id = '${b}' returning id`,
      ],
      ["delete another tenant's members", `delete from auth.members where organization_id = '${b}' returning id`],
      [
        "join another tenant",
        `insert into auth.members (organization_id, user_id, role) values ('${b}', '${userA}', 'owner') returning id`,
      ],
      ["read another tenant's invitations", `select 1 from auth.invitations where id = '${invitationB}'`],
      [
        "update another tenant's invitations",
        `update auth.invitations set role = 'owner' where id = '${invitationB}' returning id`,
      ],
      [
        "invite into another tenant",
        `insert into auth.invitations (organization_id, email, role, status, expires_at, inviter_id) values ('${b}', 'x@example.test', 'owner', 'pending', now() + interval '1 day', '${userA}') returning id`,
      ],
      ["read another tenant's organization", `select 1 from auth.organizations where id = '${b}'`],
      [
        "update another tenant's organization",
        `update auth.organizations set name = 'pwned' where id = '${b}' returning id`,
      ],
      ["delete another tenant's organization", `delete from auth.organizations where id = '${b}' returning id`],
      ["read a session acting in another tenant", `select 1 from auth.sessions where id = '${sessionB}'`],
      [
        "update a session acting in another tenant",
        `update auth.sessions set expires_at = now() + interval '10 years' where id = '${sessionB}' returning id`,
      ],
      [
        "point a session at another tenant",
        `update auth.sessions set active_organization_id = '${b}' where user_id = '${userA}' returning id`,
      ],
      ["read another tenant's mail", `select 1 from email.email_sends where id = '${sendB}'`],
      ["read another tenant's mail events", `select 1 from email.email_events where send_id = '${sendB}'`],
      ["read another tenant's recorded mail", `select 1 from email.dev_messages where send_id = '${sendB}'`],
      ["read another tenant's roles", `select 1 from permissions.roles where tenant_id = '${b}'`],
      [
        "assign a global role",
        `insert into permissions.user_roles (user_id, role_id, tenant_id) select '${userB}', id, null from permissions.roles where tenant_id is null limit 1 returning id`,
      ],
    ];
    for (const [what, statement] of cases) {
      expectRefused(await inA(statement), what);
      // The control: the same statement as the runtime doing system work ('*') reaches its rows, so
      // what refused it above is the tenant.
      if (role === "sv_app") {
        const control = await attempt(role, statement, "*");
        expect("rows" in control && control.rows.length > 0, `${what}, as '*': ${JSON.stringify(control)}`).toBe(true);
      }
    }
  });
});

// sv_app reads them: it signs people in.
describe.each(["sv_readonly", "sv_auditor"] as const)("logged in as %s", (role) => {
  it("reads no secret: tokens, passwords, codes, private keys, rendered mail", async () => {
    for (const [table, columns] of Object.entries(SECRETS)) {
      for (const column of columns) {
        expect(await attempt(role, `select ${column} from ${table} limit 1`), `${table}.${column}`).toMatchObject({
          code: "42501",
        });
      }
      expect(await attempt(role, `select * from ${table} limit 1`), `${table}.*`).toMatchObject({ code: "42501" });
    }
    // Checked in the catalog too, for every column whose name says secret (in a table added later, say).
    const readable = await owner<{ column: string }[]>`
      select table_schema || '.' || table_name || '.' || column_name as column from information_schema.columns
      where table_schema in ('auth', 'email', 'audit', 'permissions')
        and column_name ~ '(^|_)(token|password|secret|private_key|backup_codes)$'
        and has_column_privilege(${role}, format('%I.%I', table_schema, table_name), column_name, 'SELECT')
      order by 1`;
    expect(readable.map((r) => r.column)).toEqual([]);
  });
});

describe("what the roles keep", () => {
  it("sv_app, inside its tenant, still reads and writes the tenant's rows, and the defaults", async () => {
    const { tenantA: a, userA } = ids;
    const seen = await attempt(
      "sv_app",
      `select (select count(*)::int from auth.members where organization_id = '${a}') as members,
              (select count(*)::int from auth.organizations) as organizations,
              (select count(*)::int from email.email_templates where tenant_id is null) > 0 as defaults`,
      a,
    );
    expect(seen).toEqual({ rows: [{ members: 1, organizations: 1, defaults: true }] });
    expect(
      await attempt("sv_app", `update auth.members set role = role where organization_id = '${a}' returning id`, a),
    ).toMatchObject({
      rows: [expect.anything()],
    });
    expect(
      await attempt(
        "sv_app",
        `update auth.sessions set active_organization_id = '${a}' where user_id = '${userA}' returning id`,
        a,
      ),
    ).toMatchObject({ rows: [expect.anything()] });
  });

  it("sv_app with no tenant set (better-auth's own flows) and with '*' (system work) sees every tenant", async () => {
    for (const tenant of [undefined, "*"]) {
      const seen = await attempt("sv_app", "select count(*)::int as n from auth.members", tenant);
      expect(seen, `tenant ${tenant ?? "unset"}`).toEqual({ rows: [{ n: 2 }] });
    }
  });

  it("sv_readonly reads the rest of the tables that hold secrets", async () => {
    const outcome = await attempt(
      "sv_readonly",
      `select (select count(*)::int from auth.sessions) > 0 as sessions,
              (select count(*)::int from auth.accounts where provider_id = 'credential') > 0 as accounts,
              (select count(*)::int from email.email_sends where status = 'queued') > 0 as sends`,
      "*",
    );
    expect(outcome).toEqual({ rows: [{ sessions: true, accounts: true, sends: true }] });
  });
});

describe("session tokens", () => {
  it("a token read from auth.sessions is no bearer credential; the signed set-auth-token is", async () => {
    const app = createApp(sdk, { logRequests: false });
    const carol = await createTestUser(sdk);
    expect(carol.token).toContain(".");
    const [row] = await owner<
      { token: string }[]
    >`select token from auth.sessions where user_id = ${carol.user.id} limit 1`;
    const token = row!.token;
    const me = (credential: string) =>
      app.request("/api/v1/me", { headers: { authorization: `Bearer ${credential}` } });
    expect((await me(token)).status).toBe(401);
    expect((await me(carol.token)).status).toBe(200);
  });
});
