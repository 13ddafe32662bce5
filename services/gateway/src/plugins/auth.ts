import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { hashSecret } from '@cxr/contracts';
import type { Database } from '@cxr/db';
import type { Types } from 'mongoose';
import { unauthorized } from '../errors';
import { parseApiKey, secretMatches } from '../lib/api-keys';

/** Who is calling: a user by API key, or the bootstrap admin by ADMIN_API_KEY. */
export type Principal =
  | { kind: 'user'; userId: Types.ObjectId; isAdmin: boolean; keyId: string }
  | { kind: 'bootstrap-admin'; isAdmin: true };

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/** The calling user, or 401/403 for the bootstrap admin key, which may only create users. */
export function requireUser(request: FastifyRequest): Extract<Principal, { kind: 'user' }> {
  const principal = request.principal;
  if (!principal) throw unauthorized('send an API key as "Authorization: Bearer <key>"');
  if (principal.kind !== 'user') {
    throw unauthorized('the bootstrap admin key can only create users (POST /v1/users); use a user API key');
  }
  return principal;
}

export default fp<{ db: Database; adminApiKey: string }>(
  async (app: FastifyInstance, options) => {
    const adminHash = Buffer.from(hashSecret(options.adminApiKey), 'hex');
    const { ApiKey, User } = options.db.models;
    app.decorateRequest('principal', null);
    app.addHook('onRequest', async (request) => {
      const header = request.headers.authorization;
      if (!header) return;
      const match = /^Bearer\s+(\S+)$/i.exec(header);
      if (!match) throw unauthorized('the Authorization header must be "Bearer <API key>"');
      const presented = match[1]!;
      const presentedHash = Buffer.from(hashSecret(presented), 'hex');
      if (timingSafeEqual(presentedHash, adminHash)) {
        request.principal = { kind: 'bootstrap-admin', isAdmin: true };
        return;
      }
      const parsed = parseApiKey(presented);
      if (!parsed) throw unauthorized('the API key is malformed');
      const key = await ApiKey.findById(parsed.keyId).lean();
      if (!key || key.revoked_at || !secretMatches(parsed.secret, key.secret_hash)) {
        throw unauthorized('the API key is not valid');
      }
      const user = await User.findById(key.user, { is_admin: 1 }).lean();
      if (!user) throw unauthorized('the API key is not valid');
      request.principal = { kind: 'user', userId: user._id, isAdmin: user.is_admin, keyId: key._id };
    });
  },
  { name: 'auth' },
);
