/**
 * What a router remembers of tenant placements: the few tenants that live in a database of their
 * own, held in memory while a listener on main hears every change (a move's start and switch, a
 * tenant created on a database of its own), and asked of main until then.
 */
import { sql as rawSql } from "drizzle-orm";
import { transientError } from "../errors.js";
import { outsideEveryContext } from "./context-storage.js";
import type { Database } from "./unit-of-work.js";
import { UUID } from "../uuid.js";

/** The channel notified when a placement changes (a move starts or switches, a tenant is placed). */
export const PLACEMENTS_CHANNEL = "sv_placements";

/** `main`: a handle on the control-plane database; `listen`: subscribes to PLACEMENTS_CHANNEL. */
export function createPlacements(
  main: () => Database,
  listen: (onChange: () => void) => Promise<(() => Promise<void>) | undefined>,
) {
  let known: Map<string, string> | undefined;
  let listening: Promise<(() => Promise<void>) | undefined> | undefined;
  let live = false;
  // A load that started before a change was heard must not bring back what the change replaced.
  let generation = 0;
  let reloading: Promise<void> | undefined;
  const forget = () => {
    generation++;
    known = undefined;
  };
  const load = async () => {
    const loading = generation;
    const rows = await main().execute<{ tenant: string; database: string }>(
      rawSql`select tenant_id::text as tenant, database from platform.tenant_placements`,
    );
    const loaded = new Map(rows.map((r) => [r.tenant, r.database]));
    if (loading === generation) known = loaded;
    return loaded;
  };
  // Started outside the caller's unit of work: the listener's callbacks and the reload run later,
  // on connections of their own, and must not see (or wait on) the transactions of the unit that
  // happened to start them.
  const startListening = () =>
    (listening ??= outsideEveryContext(() =>
      listen(forget).then(
        (unlisten) => ((live = unlisten !== undefined), unlisten),
        () => ((listening = undefined), undefined),
      ),
    ));
  return {
    async of(tenantId: string): Promise<string | undefined> {
      startListening();
      if (live && known) return known.get(tenantId);
      if (live) return (await load()).get(tenantId);
      const [row] = await main().execute<{ database: string }>(
        rawSql`select database from platform.tenant_placements where tenant_id = ${tenantId}::uuid`,
      );
      return row?.database;
    },
    /**
     * Where the tenant lives by memory, without asking (`database` undefined: no placement, each
     * schema's database), or undefined when memory has no answer yet: the listener is not up, or a
     * change was heard and the placements are reloading (in the background; the caller asks main).
     */
    remembered(tenantId: string): { database: string | undefined } | undefined {
      startListening();
      if (!live) return undefined;
      if (known) return { database: known.get(tenantId) };
      reloading ??= outsideEveryContext(() => load())
        .then(
          () => undefined,
          () => undefined,
        )
        .finally(() => (reloading = undefined));
      return undefined;
    },
    /**
     * Where the tenant lives, asked of main now (when memory has no answer, for a unit about to open,
     * which holds no connection yet); a failure to ask is the caller's 503.
     */
    async ask(tenantId: string): Promise<{ database: string | undefined }> {
      // Not an id a tenant can have: no placement (and row-level security finds no rows for it).
      if (!UUID.test(tenantId)) return { database: undefined };
      try {
        return { database: await this.of(tenantId) };
      } catch (error) {
        throw transientError(error) ?? error;
      }
    },
    forget,
    /** A placement this instance just committed (a tenant created on a database of its own). */
    learn(tenantId: string, database: string) {
      known?.set(tenantId, database);
    },
    async stop() {
      const unlisten = await listening?.catch(() => undefined);
      listening = undefined;
      live = false;
      await unlisten?.().catch(() => undefined);
    },
  };
}
