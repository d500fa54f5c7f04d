/**
 * The counter between a move's COPY out and COPY in (src/db/tenant-move-copy.ts): real binary COPY data
 * from the server, cut at every byte and at random places, must come out byte for byte, in batches,
 * with its rows counted — a length field split across two chunks included.
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Writable } from "node:stream";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { binaryRowCounter } from "./tenant-move-copy.js";

const ROWS = 300;
let copy: Buffer;
let sql: postgres.Sql;

beforeAll(async () => {
  sql = postgres(inject("svTestDatabase").url, { max: 1, onnotice: () => {} });
  const reader = await sql
    .unsafe(
      `copy (select g, repeat('x', g % 70), case when g % 3 = 0 then null else g::text end, '{}'::jsonb
               from generate_series(1, ${ROWS}) g) to stdout (format binary)`,
    )
    .readable();
  const chunks: Buffer[] = [];
  for await (const chunk of reader) chunks.push(chunk as Buffer);
  copy = Buffer.concat(chunks);
});

afterAll(() => sql?.end({ timeout: 5 }));

async function through(chunks: Buffer[]) {
  const counter = binaryRowCounter();
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    counter,
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        out.push(chunk);
        done();
      },
    }),
  );
  return { rows: counter.rows, out };
}

describe("the binary COPY row counter", () => {
  it("counts every row and passes the bytes on unchanged when each chunk is one byte", async () => {
    const bytes = Array.from({ length: copy.length }, (_, i) => copy.subarray(i, i + 1));
    const { rows, out } = await through(bytes);
    expect(rows).toBe(ROWS);
    expect(Buffer.concat(out).equals(copy)).toBe(true);
  });

  it("does so for chunks cut at random places, and passes them on in fewer, larger writes", async () => {
    for (let round = 0; round < 20; round++) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < copy.length; ) {
        const size = 1 + Math.floor(Math.random() * 40);
        chunks.push(copy.subarray(at, at + size));
        at += size;
      }
      const { rows, out } = await through(chunks);
      expect(rows).toBe(ROWS);
      expect(Buffer.concat(out).equals(copy)).toBe(true);
      expect(out.length).toBeLessThan(chunks.length);
    }
  });
});
