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

  describe('load', () => {
    /** A read the test ends when it chooses, counting how many were made. */
    function reads<V>() {
      const made: { resolve: (value: V) => void; reject: (error: Error) => void }[] = [];
      const read = () =>
        new Promise<V>((resolve, reject) => {
          made.push({ resolve, reject });
        });
      return { made, read };
    }

    it('makes one read for callers that miss at the same time, and keeps its value', async () => {
      const cache = new TtlCache<string>(60_000, 10, () => 0);
      const { made, read } = reads<string>();
      const all = Promise.all([cache.load('k', read), cache.load('k', read), cache.load('k', read)]);
      expect(made).toHaveLength(1);
      made[0]!.resolve('v');
      expect(await all).toEqual(['v', 'v', 'v']);
      expect(await cache.load('k', read)).toBe('v');
      expect(made).toHaveLength(1);
    });

    it('reads again once the entry expired', async () => {
      let now = 0;
      const cache = new TtlCache<string>(1_000, 10, () => now);
      const { made, read } = reads<string>();
      const first = cache.load('k', read);
      made[0]!.resolve('old');
      await first;
      now = 1_000;
      const second = cache.load('k', read);
      expect(made).toHaveLength(2);
      made[1]!.resolve('new');
      expect(await second).toBe('new');
    });

    it('keeps neither a failed read nor a value it is told not to keep', async () => {
      const cache = new TtlCache<string | null>(60_000, 10, () => 0);
      const { made, read } = reads<string | null>();
      const failing = cache.load('k', read);
      made[0]!.reject(new Error('database down'));
      await expect(failing).rejects.toThrow('database down');
      const unknown = cache.load('k', read, (value) => value !== null);
      expect(made).toHaveLength(2);
      made[1]!.resolve(null);
      expect(await unknown).toBeNull();
      expect(cache.size).toBe(0);
    });

    it('does not keep a read that was under way when the key was deleted', async () => {
      const cache = new TtlCache<string>(60_000, 10, () => 0);
      const { made, read } = reads<string>();
      const before = cache.load('k', read);
      cache.delete('k'); // a key revoked while its record was being read
      const after = cache.load('k', read);
      expect(made).toHaveLength(2);
      made[0]!.resolve('before revocation');
      made[1]!.resolve('after revocation');
      expect(await before).toBe('before revocation');
      expect(await after).toBe('after revocation');
      expect(cache.get('k')).toBe('after revocation');
    });
    it('serves an entry in the second half of its life while one read refreshes it in the background', async () => {
      let now = 0;
      const cache = new TtlCache<string | null>(1_000, 10, () => now);
      const { made, read } = reads<string | null>();
      const first = cache.load('k', read);
      made[0]!.resolve('v1');
      await first;
      now = 400; // first half: no read
      expect(await cache.load('k', read)).toBe('v1');
      expect(made).toHaveLength(1);
      now = 600; // second half: answered at once, and one read started for all callers
      expect(await Promise.all([cache.load('k', read), cache.load('k', read)])).toEqual(['v1', 'v1']);
      expect(made).toHaveLength(2);
      made[1]!.resolve('v2');
      await Promise.resolve();
      now = 1_050; // past the first value's expiry: the refreshed one (set at 600), no read
      expect(await cache.load('k', read)).toBe('v2');
      expect(made).toHaveLength(2);
      // A refresh that finds the record gone (a deleted key) drops the entry at once.
      now = 1_200;
      expect(await cache.load('k', read, (value) => value !== null)).toBe('v2');
      made[2]!.resolve(null);
      await Promise.resolve();
      expect(cache.get('k')).toBeUndefined();
    });

    it('never serves an entry past its expiry, even while a refresh is failing', async () => {
      let now = 0;
      const cache = new TtlCache<string>(1_000, 10, () => now);
      const { made, read } = reads<string>();
      const first = cache.load('k', read);
      made[0]!.resolve('v1');
      await first;
      now = 600;
      expect(await cache.load('k', read)).toBe('v1');
      made[1]!.reject(new Error('database down'));
      await Promise.resolve();
      now = 1_000;
      const late = cache.load('k', read);
      expect(made).toHaveLength(3);
      made[2]!.resolve('v3');
      expect(await late).toBe('v3');
    });
  });
});
