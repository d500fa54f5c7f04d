-- Custom migration: platform-wide audit pages off an index (issue 15 follow-up, growth row).
--
-- The export and platform-scope reads page through every tenant's events newest first, by keyset
-- (occurred_at, id) — since the module reads through the platform's merged pages, one bounded query
-- per page. audit_logs_tenant_time_idx leads with tenant_id, so without this index each such page
-- sorted every row of the trail (the export fell from 9.7 MB/s at 10k rows to 0.6 MB/s at 1M). On the
-- partitioned table it is built on every partition, in the migration's transaction.
CREATE INDEX "audit_logs_time_idx" ON "audit"."audit_logs" USING btree ("occurred_at","id");
