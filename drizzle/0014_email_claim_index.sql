-- Custom migration: an index in the order of the dispatcher's claim (issue 13, growth row).
--
-- The claim takes `order by next_attempt_at, batch_key nulls last limit n for update skip locked`
-- (it used to end with `, id`). email_sends_due_idx (next_attempt_at) gave only the first key, so rows
-- sharing a next_attempt_at were sorted after the scan — and a backlog enqueued in one transaction
-- shares one (now() is the transaction's start): every claim read and sorted all of it (a sequential
-- scan and an on-disk sort, 87 ms a claim at 100k due rows). In this index the claim reads its rows
-- off the front, in order: Limit > LockRows > Index Scan, however many rows share a timestamp. Rows
-- with equal keys lie in the index in heap order (its tiebreaker), so such a backlog is claimed in the
-- order it lies on disk rather than scattered by random ids, and the equal keys are deduplicated (138
-- pages for 100k rows against 1,700 with id as a third column). It serves every query the old index
-- did (same predicate, same leading column), which goes.
--
-- Built in the migration's transaction (CREATE INDEX CONCURRENTLY cannot run in one): writes to
-- email_sends wait while it is built, for as long as reading the table takes.
CREATE INDEX "email_sends_claim_idx" ON "email"."email_sends" USING btree ("next_attempt_at", "batch_key") WHERE status in ('queued', 'sending');--> statement-breakpoint
DROP INDEX "email"."email_sends_due_idx";
