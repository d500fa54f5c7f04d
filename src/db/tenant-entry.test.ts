/**
 * Entering a tenant (platform.tenant_entry, drizzle/0025) holds the tenant's write gate before it reads
 * the placement, each in a snapshot of its own: a unit that waited at the gate while a move flipped the
 * placement reads where the tenant lives now, not where it lived when the unit's statement began. One
 * statement doing both would read the placement in a snapshot taken before the wait — and write where
 * the tenant no longer lives.
 */
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

const GATE = 1937142903;
let owner: postgres.Sql;
let runtime: postgres.Sql;

beforeAll(() => {
  const url = inject("svTestDatabase").url;
  owner = postgres(url, { max: 2, onnotice: () => {} });
  runtime = postgres(url, { max: 1, onnotice: () => {}, connection: { role: "sv_app" } });
});

afterAll(async () => {
  await Promise.all([owner?.end({ timeout: 5 }), runtime?.end({ timeout: 5 })]);
});

describe("entering a tenant", () => {
  it("reads the placement after the write gate: a flip committed during the wait is seen", async () => {
    const tenant = crypto.randomUUID();
    await owner`insert into auth.organizations (id, name, slug) values (${tenant}, 'Entry', ${`entry-${tenant}`})`;
    try {
      let flip!: () => void;
      const flipped = new Promise<void>((resolve) => (flip = resolve));
      // A move's cutover: the gate held exclusively while the placement changes.
      const mover = owner.begin(async (tx) => {
        await tx`select pg_advisory_xact_lock(${GATE}, hashtext(${tenant}))`;
        await tx`insert into platform.tenant_placements (tenant_id, database, state) values (${tenant}, 'tenant_db', 'active')`;
        await flipped;
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const entering = runtime.begin(async (tx) => {
        const [row] = await tx<
          { entry: string[] | null }[]
        >`select platform.tenant_entry(${tenant}, ${tenant}) as entry`;
        return row!.entry;
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      flip();
      await mover;
      expect((await entering)?.slice(0, 2)).toEqual(["tenant_db", "active"]);
    } finally {
      await owner`delete from auth.organizations where id = ${tenant}`;
    }
  });

  it("answers nothing, and holds no gate, for a tenant id that is not a UUID", async () => {
    const [row] = await runtime.begin(
      (tx) => tx<{ entry: string[] | null; tenant: string }[]>`
        select platform.tenant_entry('not-a-uuid', null) as entry, current_setting('sv.tenant_id') as tenant`,
    );
    expect(row).toEqual({ entry: null, tenant: "not-a-uuid" });
  });
});
