// Webhook signatures, as Stripe and GitHub make them: HMAC-SHA256 over "<timestamp>.<body>"
// with a secret of the request's submitter. @cxr/client's verifyWebhookSignature checks them.
import { createHmac } from 'node:crypto';

/** The prefix of a user's webhook secret, and of its derivation (a new version would rotate every secret). */
const SECRET_PREFIX = 'whsec_';
const DERIVATION = 'cxr-webhook:v1:';

/**
 * A user's webhook secret: derived from WEBHOOK_SIGNING_KEY and the user's id, so nothing is
 * stored and every replica computes the same one. Changing the key changes every user's secret.
 */
export function webhookSecret(signingKey: string, userId: string): string {
  return (
    SECRET_PREFIX +
    createHmac('sha256', signingKey)
      .update(DERIVATION + userId, 'utf8')
      .digest('base64url')
  );
}

/** The CXR-Signature header of `body` sent at `timestamp` (Unix seconds): `t=<timestamp>,v1=<hex HMAC>`. */
export function signatureHeader(secret: string, timestamp: number, body: string): string {
  const v1 = createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex');
  return `t=${timestamp},v1=${v1}`;
}
