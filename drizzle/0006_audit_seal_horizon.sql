ALTER TABLE "audit"."audit_logs" ADD COLUMN "txid" bigint DEFAULT (pg_current_xact_id())::text::bigint NOT NULL;--> statement-breakpoint
ALTER TABLE "audit"."audit_seals" ADD COLUMN "from_txid" bigint NOT NULL;--> statement-breakpoint
ALTER TABLE "audit"."audit_seals" ADD COLUMN "to_txid" bigint NOT NULL;--> statement-breakpoint
ALTER TABLE "audit"."audit_seals" ADD COLUMN "digests" "bytea" NOT NULL;--> statement-breakpoint
CREATE INDEX "audit_logs_txid_brin_idx" ON "audit"."audit_logs" USING brin ("txid");--> statement-breakpoint
CREATE INDEX "audit_seals_to_txid_idx" ON "audit"."audit_seals" USING btree ("to_txid");