import { createHmac } from 'node:crypto';
import { signatureHeader, webhookSecret } from './signing';

const KEY = 'a-signing-key-of-at-least-32-characters!';

describe('webhook signing', () => {
  it("derives each user's secret from the key: stable, distinct per user and per key, shown as whsec_", () => {
    const a = webhookSecret(KEY, '6650f000a4b5c6d7e8f90000');
    expect(a).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(webhookSecret(KEY, '6650f000a4b5c6d7e8f90000')).toBe(a);
    expect(webhookSecret(KEY, '6650f000a4b5c6d7e8f90001')).not.toBe(a);
    expect(webhookSecret(`${KEY}-rotated`, '6650f000a4b5c6d7e8f90000')).not.toBe(a);
  });

  it('signs "<t>.<body>" with HMAC-SHA256 keyed by the secret as shown, as the README documents', () => {
    const secret = webhookSecret(KEY, '6650f000a4b5c6d7e8f90000');
    expect(secret).toBe(
      `whsec_${createHmac('sha256', KEY).update('cxr-webhook:v1:6650f000a4b5c6d7e8f90000').digest('base64url')}`,
    );
    const body = JSON.stringify({ type: 'classification.failed', request: { id: 'x' } });
    const expected = createHmac('sha256', secret).update(`1800000000.${body}`).digest('hex');
    expect(signatureHeader(secret, 1_800_000_000, body)).toBe(`t=1800000000,v1=${expected}`);
    expect(signatureHeader(secret, 1_800_000_001, body)).not.toBe(`t=1800000001,v1=${expected}`);
  });
});
