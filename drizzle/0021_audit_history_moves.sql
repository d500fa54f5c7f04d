-- A tenant's audit history moves with the tenant (src/modules/audit/history-move.ts):
--  * audit_seals.anchor marks the seal that starts a moved history on its new database: its
--    prev_seal_hash is the source chain's head, and it records where the history came from.
--  * The append-only guard lets the tables' owner delete the rows and seals of one tenant, and only
--    inside a transaction that named that tenant in sv.audit_history_moving (the move sets them
--    aside into platform.tenant_move_retained). The runtime role has no DELETE privilege at all; the
--    owner could already disable the trigger, so this grants no new power — it keeps every other
--    delete refused and leaves no trigger disabled for other writers.
ALTER TABLE "audit"."audit_seals" ADD COLUMN "anchor" jsonb;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND TG_LEVEL = 'ROW' AND OLD.tenant_id IS NOT NULL
     AND OLD.tenant_id::text = current_setting('sv.audit_history_moving', true) THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit.% is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
