/**
 * Our patch to postgres.js (patches/postgres+3.4.9.patch, README "Dependencies we patch") sends an
 * unnamed statement — what drizzle-orm sends — whose parameters are strings, numbers, booleans or
 * null in one flight (Parse, Describe, Bind, Execute, Sync), as libpq and node-postgres do. Unpatched,
 * postgres.js first sends Parse and Describe and waits for the server's answer before it binds: two
 * round trips for every query with a parameter. Parameters whose encoding depends on the type the
 * server infers (arrays, objects) still ask first. Counted here as the flights a TCP proxy sees from
 * the client, and the values checked on the way back.
 */
import { createServer, type Server, Socket } from "node:net";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

let proxy: Server;
let client: postgres.Sql;
/** Chunks the proxy received from the client since the last `reset()`. */
let flights = 0;
const reset = () => {
  flights = 0;
};

beforeAll(async () => {
  const target = new URL(inject("svTestDatabase").url);
  proxy = createServer((inbound) => {
    const outbound = new Socket();
    outbound.connect(Number(target.port), target.hostname);
    inbound.on("data", (chunk) => {
      flights++;
      outbound.write(chunk);
    });
    outbound.pipe(inbound);
    const close = () => (inbound.destroy(), outbound.destroy());
    inbound.on("error", close).on("close", close);
    outbound.on("error", close).on("close", close);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const address = proxy.address() as { port: number };
  const url = new URL(target);
  url.host = `127.0.0.1:${address.port}`;
  client = postgres(url.toString(), { max: 1, onnotice: () => {} });
  await client`select 1`; // connected: later flights are the statements' own
});

afterAll(async () => {
  await client?.end({ timeout: 5 });
  await new Promise((resolve) => proxy?.close(resolve));
});

describe("an unnamed statement with parameters (the patched postgres.js)", () => {
  it("goes in one flight when its parameters are strings, numbers, booleans and null, with the values intact", async () => {
    const db = drizzle(client);
    reset();
    const rows = await db.execute<{ s: string; n: number; b: boolean; z: string | null; j: unknown }>(
      sql`select ${"it's"}::text as s, ${41}::int + 1 as n, ${true} as b, ${null}::text as z, ${'{"a":[1,2]}'}::jsonb as j`,
    );
    expect(flights).toBe(1);
    expect(rows[0]).toMatchObject({ s: "it's", n: 42, b: true, z: null });
    expect(JSON.stringify(rows[0]!.j)).toContain('"a":[1,2]');
  });

  it("still asks for the types first when a parameter's encoding depends on them (an array)", async () => {
    reset();
    const rows = await client.unsafe("select $1::text[] as list", [["a", "b,c"]], { prepare: false });
    expect(flights).toBe(2);
    expect(rows[0]!.list).toEqual(["a", "b,c"]);
  });

  it("leaves named statements as they were (prepared once per connection)", async () => {
    await client`select ${"warm"}::text as v`;
    reset();
    const rows = await client`select ${"again"}::text as v`;
    expect(flights).toBe(1);
    expect(rows[0]!.v).toBe("again");
  });
});
