import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { hashSecret } from '@cxr/contracts';
import type { Database } from '@cxr/db';
import type { Types } from 'mongoose';
import { unauthorized } from '../errors';
import { parseApiKey, secretMatches } from '../lib/api-keys';
import { TtlCache } from '../lib/ttl-cache';

/** Who is calling: a user by API key, or the bootstrap admin by ADMIN_API_KEY. */
export type Principal =
  | { kind: 'user'; userId: Types.ObjectId; isAdmin: boolean; keyId: string }
  | { kind: 'bootstrap-admin'; isAdmin: true };

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyInstance {
    /** Forgets a key's cached record at once (this gateway; others within the cache's seconds). */
    forgetApiKey(keyId: string): void;
  }
}

/** What authenticating a key needs of its record and its user, cached for a few seconds. */
interface KeyRecord {
  secretHash: string;
  revoked: boolean;
  userId: Types.ObjectId | null;
  isAdmin: boolean;
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

/**
 * Authenticates every request by its API key. A key's record and its user are read once per
 * `cacheSeconds` (the secret is still checked against the stored hash on every request), so a
 * revoked key stops working at once on the gateway that revoked it and within `cacheSeconds`
 * on the others.
 */
export default fp<{ db: Database; adminApiKey: string; cacheSeconds: number }>(
  async (app: FastifyInstance, options) => {
    const adminHash = Buffer.from(hashSecret(options.adminApiKey), 'hex');
    const { ApiKey, User } = options.db.models;
    const cache = new TtlCache<KeyRecord | null>(options.cacheSeconds * 1000, 10_000);
    app.decorate('forgetApiKey', (keyId: string) => cache.delete(keyId));

    async function readKeyRecord(keyId: string): Promise<KeyRecord | null> {
      const key = await ApiKey.findById(keyId).lean();
      if (!key) return null;
      const user = key.revoked_at ? null : await User.findById(key.user, { is_admin: 1 }).lean();
      return {
        secretHash: key.secret_hash,
        revoked: key.revoked_at !== null,
        userId: user?._id ?? null,
        isAdmin: user?.is_admin ?? false,
      };
    }
    // An unknown key id is not kept: made-up ids would fill the cache.
    const keyRecord = (keyId: string) =>
      cache.load(
        keyId,
        () => readKeyRecord(keyId),
        (record) => record !== null,
      );

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
      const key = await keyRecord(parsed.keyId);
      if (!key || key.revoked || !key.userId || !secretMatches(parsed.secret, key.secretHash)) {
        throw unauthorized('the API key is not valid');
      }
      request.principal = { kind: 'user', userId: key.userId, isAdmin: key.isAdmin, keyId: parsed.keyId };
    });
  },
  { name: 'auth' },
);
