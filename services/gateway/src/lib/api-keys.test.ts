import { generateApiKey, parseApiKey, secretMatches } from './api-keys';

describe('API keys', () => {
  it('round-trips: a generated key parses and its secret matches the stored hash', () => {
    const created = generateApiKey();
    const parsed = parseApiKey(created.key);
    expect(parsed?.keyId).toBe(created.keyId);
    expect(secretMatches(parsed!.secret, created.secretHash)).toBe(true);
    expect(created.secretHash).not.toContain(parsed!.secret);
  });

  it('rejects a key whose secret was changed by one character', () => {
    const created = generateApiKey();
    const parsed = parseApiKey(created.key)!;
    const flipped = (parsed.secret[0] === 'A' ? 'B' : 'A') + parsed.secret.slice(1);
    expect(secretMatches(flipped, created.secretHash)).toBe(false);
  });

  it('refuses malformed keys', () => {
    expect(parseApiKey('cxr_short_x')).toBeNull();
    expect(parseApiKey('')).toBeNull();
    expect(parseApiKey(`xyz_${'a'.repeat(16)}_${'b'.repeat(43)}`)).toBeNull();
  });
});
