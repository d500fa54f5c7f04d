/**
 * `sv-sdk/schema`: sv-sdk's tables your own drizzle schema references (a foreign key to a user or an
 * organization), with nothing else loaded — drizzle-kit reads your schema file, and this import with
 * it, without starting the SDK.
 *
 * @example
 * import { users } from "sv-sdk/schema";
 * export const invoices = billing.table("invoices", {
 *   userId: uuid("user_id").notNull().references(() => users.id),
 * });
 */
export { members, organizations, users } from "./modules/auth/schema.js";
