import { createHash, randomBytes } from 'node:crypto';

/** A fresh dispatch token: 32 random bytes, base64url (43 characters). */
export function newDispatchToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Tokens are 256-bit random secrets, so a plain SHA-256 is enough to store them: there is
 * nothing to brute-force, and lookups by hash stay a single indexed query.
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}
