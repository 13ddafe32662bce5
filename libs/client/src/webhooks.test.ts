import { createHmac } from 'node:crypto';
import { verifyWebhookSignature, WebhookSignatureError } from './webhooks';

const secret = 'whsec_test-secret-of-some-user';
const body = '{"type":"classification.classified","request":{"id":"6650f1c2a4b5c6d7e8f90123"}}';
const t = 1_800_000_000;
const sign = (key: string, timestamp: number, payload: string) =>
  createHmac('sha256', key).update(`${timestamp}.${payload}`).digest('hex');

async function problem(options: Parameters<typeof verifyWebhookSignature>[0]): Promise<string> {
  try {
    await verifyWebhookSignature(options);
  } catch (error) {
    if (error instanceof WebhookSignatureError) return error.code;
    throw error;
  }
  return 'accepted';
}

describe('verifyWebhookSignature', () => {
  const header = `t=${t},v1=${sign(secret, t, body)}`;

  it('accepts the signature of the body with the secret, as text or bytes, and returns its timestamp', async () => {
    await expect(verifyWebhookSignature({ secret, header, body, now: t + 10 })).resolves.toBe(t);
    await expect(verifyWebhookSignature({ secret, header, body: Buffer.from(body), now: t })).resolves.toBe(t);
  });

  it('accepts any of several v1 signatures (a key being rotated)', async () => {
    const two = `t=${t},v1=${sign('whsec_old', t, body)},v1=${sign(secret, t, body)}`;
    await expect(verifyWebhookSignature({ secret, header: two, body, now: t })).resolves.toBe(t);
  });

  it('refuses a forged signature, a tampered body, another secret and a moved timestamp', async () => {
    expect(await problem({ secret, header: `t=${t},v1=${'ab'.repeat(32)}`, body, now: t })).toBe('MISMATCH');
    expect(await problem({ secret, header, body: body.replace('classified', 'failed'), now: t })).toBe('MISMATCH');
    expect(await problem({ secret: 'whsec_someone-else', header, body, now: t })).toBe('MISMATCH');
    const moved = `t=${t + 1},v1=${sign(secret, t, body)}`;
    expect(await problem({ secret, header: moved, body, now: t })).toBe('MISMATCH');
  });

  it('refuses a timestamp beyond the tolerance either way (a replay)', async () => {
    expect(await problem({ secret, header, body, now: t + 301 })).toBe('STALE_TIMESTAMP');
    expect(await problem({ secret, header, body, now: t - 301 })).toBe('STALE_TIMESTAMP');
    expect(await problem({ secret, header, body, now: t + 30, toleranceSeconds: 20 })).toBe('STALE_TIMESTAMP');
  });

  it('refuses a missing or malformed header', async () => {
    for (const bad of [undefined, '', `v1=${sign(secret, t, body)}`, `t=${t}`, `t=soon,v1=${sign(secret, t, body)}`]) {
      expect(await problem({ secret, header: bad, body, now: t })).toBe('MALFORMED_HEADER');
    }
    expect(await problem({ secret, header: `t=${t},v1=xyz`, body, now: t })).toBe('MALFORMED_HEADER');
  });
});
