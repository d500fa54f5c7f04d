/**
 * The transactions of a unit of work below the router: the tenant's entry and row-level security
 * setting at each level, and the transactions nested levels open at the outermost one (a tenant
 * entered midway reaches a database the unit had not opened), held until the unit settles them.
 */
import { sql as rawSql } from "drizzle-orm";
import type { Pool } from "./pools.js";
import type { Database, UnitLevel } from "./unit-of-work.js";

export async function setTenant(tx: Database, tenantId: string | null | undefined, readOnly = false): Promise<void> {
  if (readOnly) {
    await tx.execute(
      rawSql`select set_config('sv.tenant_id', ${tenantId ?? ""}, true), set_config('transaction_read_only', 'on', true)`,
    );
  } else {
    await tx.execute(rawSql`select set_config('sv.tenant_id', ${tenantId ?? ""}, true)`);
  }
}

/**
 * Enters a tenant in the control-plane database (drizzle/0010, 0023): sets `sv.tenant_id`, holds the
 * tenant's write gate (a move waits for the units holding it), and answers where the tenant lives.
 */
export interface TenantEntry {
  database: string;
  state: string;
}

export async function enterTenant(tx: Database, tenantId: string): Promise<TenantEntry | undefined> {
  const rows = await tx.execute<{ entry: string[] | null }>(rawSql`select platform.tenant_entry(${tenantId}) as entry`);
  const entry = rows[0]?.entry;
  return entry?.[0] ? { database: entry[0], state: entry[1] ?? "active" } : undefined;
}

const ROLLBACK = Symbol("rollback");
export const UNIT_ENDED = new Error("sv-sdk: this unit of work has ended; its transaction can no longer be used");

/** A transaction held open until `finish` says whether it commits. */
interface HeldTransaction {
  tx: Promise<Database>;
  finish(commit: boolean): Promise<void>;
}

function holdTransaction(pool: Pool): HeldTransaction {
  let decide!: (commit: boolean) => void;
  const decision = new Promise<boolean>((resolve) => (decide = resolve));
  let opened!: (tx: Database) => void;
  let failed!: (error: unknown) => void;
  const tx = new Promise<Database>((resolve, reject) => {
    opened = resolve;
    failed = reject;
  });
  const done = pool.db
    .transaction(async (t) => {
      opened(t as unknown as Database);
      if (!(await decision)) throw ROLLBACK;
    })
    .then(
      () => undefined,
      (error: unknown) => {
        if (error === ROLLBACK) return;
        failed(error);
        throw error;
      },
    );
  done.catch(() => undefined); // observed through finish()
  return {
    tx,
    async finish(commit) {
      decide(commit);
      await done;
    },
  };
}

export const held = new WeakMap<UnitLevel, Map<string, HeldTransaction>>();

function rootOf(level: UnitLevel): UnitLevel {
  let root = level;
  while (root.parent) root = root.parent;
  return root;
}

/** The outermost level's transaction on `database`, opened on first use. */
export function joinAtRoot(level: UnitLevel, database: string, pool: (database: string) => Pool): Promise<Database> {
  const root = rootOf(level);
  let transactions = held.get(root);
  if (!transactions) held.set(root, (transactions = new Map()));
  let transaction = transactions.get(database);
  if (!transaction) transactions.set(database, (transaction = holdTransaction(pool(database))));
  return transaction.tx;
}

/**
 * Rolls back, without waiting, what nested levels opened at the outermost level when it failed
 * before settling them (its deadline passed while one of them was still opening).
 */
export function abandonJoined(root: UnitLevel): void {
  const transactions = held.get(root);
  if (!transactions) return;
  held.delete(root);
  for (const transaction of transactions.values()) transaction.finish(false).catch(() => undefined);
}

/** Commits (or rolls back) what nested levels opened at the outermost level; the first failure is thrown. */
export async function settleJoined(root: UnitLevel, commit: boolean): Promise<void> {
  const transactions = held.get(root);
  if (!transactions) return;
  held.delete(root);
  let failure: unknown;
  for (const transaction of transactions.values()) {
    try {
      await transaction.finish(commit && failure === undefined);
    } catch (error) {
      failure ??= error;
    }
  }
  if (failure !== undefined) throw failure;
}
