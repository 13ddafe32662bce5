import { TtlCache } from './ttl-cache';

describe('TtlCache', () => {
  it('answers until the entry is ttl old, then forgets it', () => {
    let now = 1_000;
    const cache = new TtlCache<string>(5_000, 10, () => now);
    cache.set('k', 'v');
    now += 4_999;
    expect(cache.get('k')).toBe('v');
    now += 1;
    expect(cache.get('k')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('drops the oldest entry beyond its size', () => {
    const cache = new TtlCache<number>(60_000, 2, () => 0);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('c', 3);
    expect([cache.get('a'), cache.get('b'), cache.get('c')]).toEqual([undefined, 2, 3]);
  });

  it('forgets a deleted entry at once, and caches nothing with a ttl of 0', () => {
    const cache = new TtlCache<number>(60_000, 10, () => 0);
    cache.set('a', 1);
    cache.delete('a');
    expect(cache.get('a')).toBeUndefined();
    const off = new TtlCache<number>(0, 10, () => 0);
    off.set('a', 1);
    expect(off.get('a')).toBeUndefined();
  });
});
