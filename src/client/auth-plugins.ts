/**
 * better-auth's client plugins matching the server's (organization, admin, two-factor, jwt; bearer
 * needs none). One list for the client and for the generator of `auth-endpoints.ts`.
 */
import { adminClient, jwtClient, organizationClient, twoFactorClient } from "better-auth/client/plugins";

export const authClientPlugins = () => [organizationClient(), adminClient(), twoFactorClient(), jwtClient()];
