-- Custom migration: the cross-schema foreign keys listed in src/db/cross-schema-keys.ts.
ALTER TABLE "permissions"."roles" ADD CONSTRAINT "roles_tenant_fk" FOREIGN KEY ("tenant_id") REFERENCES "auth"."organizations"("id") ON DELETE CASCADE;
--> statement-breakpoint
ALTER TABLE "permissions"."user_roles" ADD CONSTRAINT "user_roles_user_fk" FOREIGN KEY ("user_id") REFERENCES "auth"."users"("id") ON DELETE CASCADE;
--> statement-breakpoint
ALTER TABLE "permissions"."user_roles" ADD CONSTRAINT "user_roles_tenant_fk" FOREIGN KEY ("tenant_id") REFERENCES "auth"."organizations"("id") ON DELETE CASCADE;
--> statement-breakpoint
ALTER TABLE "permissions"."user_roles" ADD CONSTRAINT "user_roles_assigned_by_fk" FOREIGN KEY ("assigned_by") REFERENCES "auth"."users"("id") ON DELETE SET NULL;
--> statement-breakpoint
ALTER TABLE "permissions"."permission_cache" ADD CONSTRAINT "permission_cache_user_fk" FOREIGN KEY ("user_id") REFERENCES "auth"."users"("id") ON DELETE CASCADE;
--> statement-breakpoint
ALTER TABLE "permissions"."permission_cache" ADD CONSTRAINT "permission_cache_tenant_fk" FOREIGN KEY ("tenant_id") REFERENCES "auth"."organizations"("id") ON DELETE CASCADE;
--> statement-breakpoint
ALTER TABLE "email"."email_templates" ADD CONSTRAINT "email_templates_tenant_fk" FOREIGN KEY ("tenant_id") REFERENCES "auth"."organizations"("id") ON DELETE CASCADE;
--> statement-breakpoint
ALTER TABLE "email"."email_sends" ADD CONSTRAINT "email_sends_tenant_fk" FOREIGN KEY ("tenant_id") REFERENCES "auth"."organizations"("id") ON DELETE SET NULL;
--> statement-breakpoint
ALTER TABLE "email"."email_sends" ADD CONSTRAINT "email_sends_user_fk" FOREIGN KEY ("user_id") REFERENCES "auth"."users"("id") ON DELETE SET NULL;
--> statement-breakpoint
ALTER TABLE "email"."email_preferences" ADD CONSTRAINT "email_preferences_user_fk" FOREIGN KEY ("user_id") REFERENCES "auth"."users"("id") ON DELETE CASCADE;
