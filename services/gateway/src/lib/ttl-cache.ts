/**
 * A small map whose entries expire `ttlMs` after they were set, holding at most `maxEntries`
 * (the oldest set is dropped first). The clock is passed in, so expiry is tested without waiting.
 * `load` reads through it with one read per key at a time: when an entry expires under a burst,
 * the burst waits on one database read instead of making one each. And an entry used in the
 * second half of its life is read again in the background while it is still served, so under
 * steady use nobody waits for a read at all; an entry is never served past its expiry.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();
  private readonly loading = new Map<string, Promise<V>>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: V): void {
    if (this.ttlMs <= 0) return;
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: this.now() + this.ttlMs });
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
  }

  /**
   * The entry, or what `read` gives, which is kept when `keep` says so (by default always).
   * Callers that arrive while a read of the key is under way share it. A failed read is not
   * kept, and a read under way when the key is deleted is not kept either.
   */
  async load(key: string, read: () => Promise<V>, keep: (value: V) => boolean = () => true): Promise<V> {
    const entry = this.entries.get(key);
    const now = this.now();
    if (entry && entry.expiresAt > now) {
      if (entry.expiresAt - now < this.ttlMs / 2 && !this.loading.has(key)) {
        // A failed refresh leaves the entry to expire; the next load after that reads again.
        this.read(key, read, keep).catch(() => undefined);
      }
      return entry.value;
    }
    if (entry) this.entries.delete(key);
    return this.loading.get(key) ?? this.read(key, read, keep);
  }

  private read(key: string, read: () => Promise<V>, keep: (value: V) => boolean): Promise<V> {
    const reading = read().then(
      (value) => {
        if (this.loading.get(key) === reading) {
          this.loading.delete(key);
          if (keep(value)) this.set(key, value);
          else this.entries.delete(key);
        }
        return value;
      },
      (error: unknown) => {
        if (this.loading.get(key) === reading) this.loading.delete(key);
        throw error;
      },
    );
    this.loading.set(key, reading);
    return reading;
  }

  delete(key: string): void {
    this.entries.delete(key);
    this.loading.delete(key);
  }

  clear(): void {
    this.entries.clear();
    this.loading.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
