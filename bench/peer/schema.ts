/**
 * better-auth's core tables for the peer app, as its CLI generates them for drizzle on PostgreSQL
 * (user, session, account, verification), in a schema of their own (`peer`) so they never meet
 * sv-sdk's tables. `PEER_DDL` creates them; the bench runs it as the database owner.
 */
import { boolean, index, pgSchema, text, timestamp } from "drizzle-orm/pg-core";

export const peerSchema = pgSchema("peer");

export const user = peerSchema.table("user", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  email: text("email").notNull().unique(),
  emailVerified: boolean("email_verified").default(false).notNull(),
  image: text("image"),
  createdAt: timestamp("created_at").defaultNow().notNull(),
  updatedAt: timestamp("updated_at").defaultNow().notNull(),
});

export const session = peerSchema.table(
  "session",
  {
    id: text("id").primaryKey(),
    expiresAt: timestamp("expires_at").notNull(),
    token: text("token").notNull().unique(),
    createdAt: timestamp("created_at").defaultNow().notNull(),
    updatedAt: timestamp("updated_at").notNull(),
    ipAddress: text("ip_address"),
    userAgent: text("user_agent"),
    userId: text("user_id")
      .notNull()
      .references(() => user.id, { onDelete: "cascade" }),
  },
  (t) => [index("session_userId_idx").on(t.userId)],
);

export const account = peerSchema.table(
  "account",
  {
    id: text("id").primaryKey(),
    accountId: text("account_id").notNull(),
    providerId: text("provider_id").notNull(),
    userId: text("user_id")
      .notNull()
      .references(() => user.id, { onDelete: "cascade" }),
    accessToken: text("access_token"),
    refreshToken: text("refresh_token"),
    idToken: text("id_token"),
    accessTokenExpiresAt: timestamp("access_token_expires_at"),
    refreshTokenExpiresAt: timestamp("refresh_token_expires_at"),
    scope: text("scope"),
    password: text("password"),
    createdAt: timestamp("created_at").defaultNow().notNull(),
    updatedAt: timestamp("updated_at").notNull(),
  },
  (t) => [index("account_userId_idx").on(t.userId)],
);

export const verification = peerSchema.table(
  "verification",
  {
    id: text("id").primaryKey(),
    identifier: text("identifier").notNull(),
    value: text("value").notNull(),
    expiresAt: timestamp("expires_at").notNull(),
    createdAt: timestamp("created_at").defaultNow().notNull(),
    updatedAt: timestamp("updated_at").defaultNow().notNull(),
  },
  (t) => [index("verification_identifier_idx").on(t.identifier)],
);

/** The same tables as SQL (what drizzle-kit would generate from the definitions above). */
export const PEER_DDL = `
create schema peer;
create table peer."user" (
  id text primary key, name text not null, email text not null unique, email_verified boolean default false not null,
  image text, created_at timestamp default now() not null, updated_at timestamp default now() not null);
create table peer.session (
  id text primary key, expires_at timestamp not null, token text not null unique,
  created_at timestamp default now() not null, updated_at timestamp not null, ip_address text, user_agent text,
  user_id text not null references peer."user"(id) on delete cascade);
create index "session_userId_idx" on peer.session (user_id);
create table peer.account (
  id text primary key, account_id text not null, provider_id text not null,
  user_id text not null references peer."user"(id) on delete cascade,
  access_token text, refresh_token text, id_token text, access_token_expires_at timestamp,
  refresh_token_expires_at timestamp, scope text, password text,
  created_at timestamp default now() not null, updated_at timestamp not null);
create index "account_userId_idx" on peer.account (user_id);
create table peer.verification (
  id text primary key, identifier text not null, value text not null, expires_at timestamp not null,
  created_at timestamp default now() not null, updated_at timestamp default now() not null);
create index "verification_identifier_idx" on peer.verification (identifier);
`;
