/**
 * Online tenant moves (issue 16) at 100k and 1M rows (BENCH_MOVE_MAX caps the largest, or sets one
 * smaller size; BENCH_QUICK stops at 100k). At each size a tenant with that many email_sends rows
 * (generated in the database as the owner, plus a few roles) lives in a fresh `main`; two more fresh
 * databases of the same server receive it:
 *   dump-restore    the same rows copied with `pg_dump --data-only -t … | psql` into a third database
 *                   while the writer below already writes (both copies run beside the same load),
 *                   when the installed pg_dump can read the server (a pg_dump older than the server
 *                   refuses it); otherwise the COPY out | COPY in that pair runs, through two psql
 *                   processes (the note says which). rows/s.
 *   online move     moveTenant (what `sv-sdk tenant:move` runs) to `tenant_db`, while one writer keeps
 *                   creating roles in the tenant through the SDK: rows/s over the whole move, ratio
 *                   against dump-restore, target >= 1.0x.
 *   cutover         how long that writer's writes were refused (TENANT_MOVING: first refusal to the
 *                   first write accepted after it), target <= 2 s at 1M rows; the move's own measure
 *                   and the writes accepted during the move are in the note.
 */
import { spawn, spawnSync } from "node:child_process";
import postgres from "postgres";
import { coreCatalog } from "../../src/core-modules.js";
import { moveTenant } from "../../src/db/tenant-move.js";
import { parseTopology } from "../../src/db/topology.js";
import { createSdk } from "../../src/index.js";
import { TEST_ONLY_SCRYPT } from "../../src/modules/auth/index.js";
import type { Row, Scenario } from "../types.js";

const SIZES = [100_000, 1_000_000];
const CUTOVER_TARGET_MS = 2000;

export const timeoutMs = 20 * 60_000;

function sizes(quick: boolean): number[] {
  const raw = process.env.BENCH_MOVE_MAX;
  if (raw === undefined || raw === "") return quick ? [100_000] : SIZES;
  const max = Number(raw);
  if (!Number.isInteger(max) || max < 1000) throw new Error(`BENCH_MOVE_MAX must be an integer >= 1000, got '${raw}'`);
  const upTo = SIZES.filter((s) => s <= max);
  return upTo.length > 0 ? upTo : [max];
}

/** The move's own step timings, the slowest first: `initial copy 3.1 s, verify 0.4 s, ...`. */
const steps = (timings: Record<string, number>) =>
  Object.entries(timings)
    .sort(([, a], [, b]) => b - a)
    .map(([name, ms]) => `${name} ${(ms / 1000).toFixed(1)} s`)
    .join(", ");

const label = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`);

/** The installed pg_dump's major version, if it can dump a server of `serverMajor`. */
function usablePgDump(serverMajor: number): string | undefined {
  const version = spawnSync("pg_dump", ["--version"], { encoding: "utf8" });
  const major = Number(/(\d+)\./.exec(version.stdout ?? "")?.[1]);
  return major >= serverMajor ? `pg_dump ${major}` : undefined;
}

function run(command: string, input: NodeJS.ReadableStream | "ignore", args: string[]) {
  const child = spawn(command, args, { stdio: [input === "ignore" ? "ignore" : "pipe", "pipe", "inherit"] });
  if (input !== "ignore") input.pipe(child.stdin!);
  return child;
}

async function dumpRestore(from: string, to: string, tables: string[], tenantId: string, pgDump?: string) {
  const finish = async (child: ReturnType<typeof run>, what: string) => {
    child.stdout!.resume();
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    if (code !== 0) throw new Error(`${what} exited with ${code}`);
  };
  if (pgDump) {
    const dump = run("pg_dump", "ignore", ["--data-only", ...tables.flatMap((t) => ["-t", t]), from]);
    await finish(run("psql", dump.stdout!, ["-q", "-v", "ON_ERROR_STOP=1", to]), "pg_dump | psql");
    return;
  }
  // What pg_dump --data-only | psql runs, table by table: COPY out of one psql, COPY in through another.
  for (const table of tables) {
    const out = run("psql", "ignore", [
      "-q",
      "-c",
      `copy (select * from ${table} where tenant_id = '${tenantId}') to stdout`,
      from,
    ]);
    await finish(
      run("psql", out.stdout!, ["-q", "-v", "ON_ERROR_STOP=1", "-c", `copy ${table} from stdin`, to]),
      "psql | psql",
    );
  }
}

const scenario: Scenario = async (ctx) => {
  const rows: Row[] = [];
  for (const size of sizes(ctx.quick)) {
    const [main, tenantDb, dumpDb] = [await ctx.freshDatabase(), await ctx.freshDatabase(), await ctx.freshDatabase()];
    const owner = postgres(main.url, { max: 1, onnotice: () => {} });
    const topology = parseTopology({ databases: { main: { url: main.url }, tenant_db: { url: tenantDb.url } } });
    const sdk = createSdk({
      databaseUrl: main.url,
      topology,
      environment: "test",
      auth: { passwordCost: TEST_ONLY_SCRYPT, rateLimit: false },
    });
    try {
      const tenantId = crypto.randomUUID();
      await owner`insert into auth.organizations (id, name, slug) values (${tenantId}, 'Move', ${`move-${tenantId}`})`;
      await owner`insert into permissions.roles (tenant_id, name) select ${tenantId}, 'r' || i from generate_series(1, 20) i`;
      await owner`insert into email.email_sends (tenant_id, to_address, template_key, category, subject, html, text, status, sent_at)
                  select ${tenantId}, 'u' || i || '@example.test', 'welcome', 'transactional', 'Hello ' || i,
                         '<p>Hello ' || i || '</p>', 'Hello ' || i, 'sent', now()
                    from generate_series(1, ${size}) i`;
      await owner`analyze`;
      const [server] = await owner<
        { major: number }[]
      >`select current_setting('server_version_num')::int / 10000 as major`;
      const pgDump = usablePgDump(server!.major);

      // One writer in the tenant through the SDK, the whole time.
      let writing = true;
      let accepted = 0;
      // Each run of refused writes: from its first refusal to the next write accepted.
      let refusedSince: number | undefined;
      const refusedSpans: number[] = [];
      const refusals = new Map<string, number>();
      /** The move's phase, as its hook reports it: refusals are counted per phase. */
      let movePhase = "during dump-restore";
      const writer = (async () => {
        for (let i = 0; writing; i++) {
          try {
            await sdk.withContext({ actor: { type: "system", id: "bench" } }, () =>
              sdk.permissions.createRole({ name: `w${i}`, permissions: ["docs:read"] }, { tenant: tenantId }),
            );
            accepted++;
            if (refusedSince !== undefined) refusedSpans.push(performance.now() - refusedSince);
            refusedSince = undefined;
          } catch (error) {
            // Refused is refused: the cutover's TENANT_MOVING, a lock wait (DATABASE_BUSY), a database that
            // did not answer in time (DATABASE_UNAVAILABLE) — any 503 counts against the move.
            const { code = "?", status } = error as { code?: string; status?: number };
            if (status !== 503) throw error;
            const key = `${code} (${movePhase})`;
            refusals.set(key, (refusals.get(key) ?? 0) + 1);
            refusedSince ??= performance.now();
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
        }
      })();
      // Kept until the move is over (a rejection nobody awaits yet would end the process).
      writer.catch(() => {});
      // The tenant's organization first, as the move copies it (its rows' foreign keys point at it); not timed.
      const dumpOwner = postgres(dumpDb.url, { max: 1, onnotice: () => {} });
      await dumpOwner`insert into auth.organizations (id, name, slug) values (${tenantId}, 'Move', ${`move-${tenantId}`})`;
      let started = performance.now();
      await dumpRestore(main.url, dumpDb.url, ["email.email_sends", "permissions.roles"], tenantId, pgDump);
      const dumpSeconds = (performance.now() - started) / 1000;
      const acceptedDuringDump = accepted;
      movePhase = "before the move";
      // The roles the writer had created by then went too.
      const [counted] = await dumpOwner<{ copied: number }[]>`
        select (select count(*) from email.email_sends)::int + (select count(*) from permissions.roles)::int as copied`;
      await dumpOwner.end({ timeout: 5 });
      const copied = counted!.copied;
      const dumpRate = copied / dumpSeconds;
      rows.push({
        scenario: `tenant move ${label(size)}: dump-restore`,
        throughput: dumpRate,
        unit: "rows/s",
        note: pgDump
          ? `${pgDump} --data-only | psql, ${dumpSeconds.toFixed(1)} s`
          : `psql COPY out | psql COPY in (the installed pg_dump refuses PostgreSQL ${server!.major}), ${dumpSeconds.toFixed(1)} s`,
      });

      let switchedAt = 0;
      started = performance.now();
      const moved = await moveTenant({
        topology,
        catalog: coreCatalog(),
        tenantId,
        to: "tenant_db",
        onStep: (line) => process.stderr.write(`bench: 80-tenant-move ${label(size)}: ${line}\n`),
        afterStep: (phase) => {
          movePhase = phase;
          if (phase === "switched") switchedAt = performance.now();
        },
      });
      const moveSeconds = (performance.now() - started) / 1000;
      movePhase = "after the move";
      await new Promise((resolve) => setTimeout(resolve, 500));
      writing = false;
      await writer;
      // Rows/s until the tenant is live on the target; the source rows leave the live tables after that.
      const toSwitch = (switchedAt - started) / 1000;
      const moveRate = moved.rowsCopied / toSwitch;
      rows.push({
        scenario: `tenant move ${label(size)}: online move`,
        throughput: moveRate,
        unit: "rows/s",
        ratio: { against: "dump-restore", value: moveRate / dumpRate },
        target: ">= 1.0x dump-restore",
        pass: moveRate / dumpRate >= 1,
        note: `${moved.rowsCopied} rows live on the target after ${toSwitch.toFixed(1)} s (${moveSeconds.toFixed(1)} s with the source rows set aside), ${accepted - acceptedDuringDump} writes accepted meanwhile (${acceptedDuringDump} during dump-restore); steps: ${steps(moved.timings)}`,
      });
      if (refusedSince !== undefined) refusedSpans.push(performance.now() - refusedSince);
      const refusedMs = Math.max(0, ...refusedSpans);
      rows.push({
        scenario: `tenant move ${label(size)}: cutover`,
        throughput: refusedMs,
        unit: "ms",
        target: `<= ${CUTOVER_TARGET_MS} ms`,
        pass: refusedMs <= CUTOVER_TARGET_MS,
        note: `the longest run of writes refused as the writer saw it (${refusedSpans.length} runs; ${[...refusals].map(([code, n]) => `${n} ${code}`).join(", ") || "none"}); the move measured ${moved.cutoverMs} ms`,
      });
    } finally {
      await sdk.close();
      await owner.end({ timeout: 5 });
    }
  }
  return rows;
};

export default scenario;
