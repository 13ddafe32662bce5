// Checking the webhooks CXR Classify sends: `CXR-Signature: t=<unix seconds>,v1=<hex>`, where
// v1 is HMAC-SHA256 keyed with the user's webhook secret (whsec_…, GET /v1/users/me/webhook-secret)
// over `<t>.<raw body>`. Web Crypto only, so it runs in Node and in browsers alike; its HMAC
// verify compares in constant time.

/** Why a webhook's signature was not accepted. */
export type WebhookSignatureProblem = 'MALFORMED_HEADER' | 'STALE_TIMESTAMP' | 'MISMATCH';

export class WebhookSignatureError extends Error {
  override readonly name = 'WebhookSignatureError';
  constructor(
    readonly code: WebhookSignatureProblem,
    message: string,
  ) {
    super(message);
  }
}

export interface VerifyWebhookOptions {
  /** The user's webhook secret, as GET /v1/users/me/webhook-secret shows it (whsec_…). */
  secret: string;
  /** The CXR-Signature header's value. */
  header: string | null | undefined;
  /** The body exactly as received: the raw bytes or text, never a re-serialised JSON. */
  body: string | Uint8Array;
  /** How far the signature's timestamp may be from now, against replays. Default 300 s. */
  toleranceSeconds?: number;
  /** Now, in Unix seconds (for tests). */
  now?: number;
}

const encoder = new TextEncoder();

function hexBytes(hex: string): Uint8Array | null {
  if (!/^(?:[0-9a-f]{2})+$/i.test(hex)) return null;
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

/**
 * Resolves to the signature's timestamp (Unix seconds) when `header` signs `body` with `secret`
 * and its timestamp is within the tolerance; rejects with a WebhookSignatureError otherwise.
 * Deliveries are at least once: deduplicate what you accept by the request id.
 */
export async function verifyWebhookSignature(options: VerifyWebhookOptions): Promise<number> {
  const fields = (options.header ?? '').split(',').map((part) => part.trim().split('=', 2));
  const timestamps = fields.filter(([key]) => key === 't').map(([, value]) => value ?? '');
  const signatures = fields
    .filter(([key]) => key === 'v1')
    .map(([, value]) => hexBytes(value ?? ''))
    .filter((bytes): bytes is Uint8Array => bytes !== null && bytes.length === 32);
  const timestamp = timestamps.length === 1 && /^\d{1,12}$/.test(timestamps[0] ?? '') ? Number(timestamps[0]) : NaN;
  if (Number.isNaN(timestamp) || signatures.length === 0) {
    throw new WebhookSignatureError(
      'MALFORMED_HEADER',
      'the CXR-Signature header needs one t=<seconds> and a v1=<hex>',
    );
  }
  const tolerance = options.toleranceSeconds ?? 300;
  const now = options.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - timestamp) > tolerance) {
    throw new WebhookSignatureError(
      'STALE_TIMESTAMP',
      `the signature's timestamp is ${now - timestamp} s from now, beyond the tolerance of ${tolerance} s`,
    );
  }
  const key = await crypto.subtle.importKey(
    'raw',
    encoder.encode(options.secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['verify'],
  );
  const body = typeof options.body === 'string' ? encoder.encode(options.body) : options.body;
  const signed = new Uint8Array([...encoder.encode(`${timestamp}.`), ...body]);
  for (const signature of signatures) {
    if (await crypto.subtle.verify('HMAC', key, signature, signed)) return timestamp;
  }
  throw new WebhookSignatureError('MISMATCH', 'no v1 signature matches the body with this secret');
}
