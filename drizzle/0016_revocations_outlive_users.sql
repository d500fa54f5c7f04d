-- Custom migration: a deleted user's revocation outlives the user (issue 14).
--
-- Other services verify our JWTs offline for up to five minutes and poll
-- GET /api/v1/tokens/revocations to honour a revocation sooner. The revocation row had a foreign key
-- to auth.users with ON DELETE CASCADE, so deleting a user removed the very row that told those
-- services to stop trusting the user's tokens. The row now refers to the user loosely (a user id,
-- kept for one token lifetime), and every deletion of a user — through the API or by SQL — records
-- it and tells the running instances (the session feed's channel), like a sign-out does.
ALTER TABLE "auth"."session_revocations" DROP CONSTRAINT "session_revocations_user_id_users_id_fk";--> statement-breakpoint
CREATE FUNCTION "auth"."revoke_deleted_user"() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
  INSERT INTO auth.session_revocations (user_id, revoked_at) VALUES (OLD.id, now())
  ON CONFLICT (user_id) DO UPDATE SET revoked_at = excluded.revoked_at;
  PERFORM pg_notify('sv_session_revocations',
    json_build_object('kind', 'revoked', 'userId', OLD.id, 'at', floor(extract(epoch from now()) * 1000))::text);
  RETURN OLD;
END
$$;--> statement-breakpoint
CREATE TRIGGER "users_revoke_on_delete" AFTER DELETE ON "auth"."users" FOR EACH ROW EXECUTE FUNCTION "auth"."revoke_deleted_user"();
