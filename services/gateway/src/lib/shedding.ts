/**
 * Backlog shedding: refuse new submissions (503 + Retry-After) while the jobs queue holds more
 * than the workers can drain in `maxBacklogSeconds`, or more than `maxQueuedJobs`.
 *
 * Its cost is bounded and independent of history and load: one passive queue check per second
 * per gateway, a 60-slot ring of per-second counters, and a few comparisons per submission.
 */

export interface SheddingSettings {
  /** Refuse while the backlog would take longer than this to drain; 0 disables the rule. */
  maxBacklogSeconds: number;
  /** Refuse while this many jobs (or more) are waiting; 0 disables the rule. */
  maxQueuedJobs: number;
  /** The drain rate (jobs/s) assumed when less was observed: a cold start with a deep queue still sheds. */
  drainRateFloor: number;
  /** The longest Retry-After answered. */
  maxRetryAfterSeconds: number;
}

export type Admission =
  { shed: false } | { shed: true; reason: 'backlog' | 'queue-full'; retryAfterSeconds: number; limit: number };

/**
 * The decision, a pure function. `depth` is the jobs waiting (null when unknown or stale: then
 * nothing is shed), `drainPerSecond` what the workers were seen to finish.
 */
export function admission(depth: number | null, drainPerSecond: number, settings: SheddingSettings): Admission {
  if (depth === null || !Number.isFinite(depth)) return { shed: false };
  const rate = Math.max(Number.isFinite(drainPerSecond) ? drainPerSecond : 0, settings.drainRateFloor, 1e-6);
  const backlogLimit = settings.maxBacklogSeconds > 0 ? Math.floor(rate * settings.maxBacklogSeconds) : Infinity;
  const queueLimit = settings.maxQueuedJobs > 0 ? settings.maxQueuedJobs : Infinity;
  const limit = Math.min(backlogLimit, queueLimit);
  // `depth` jobs wait: this one would be number depth + 1.
  if (depth < limit) return { shed: false };
  // Long enough for the workers to bring the queue back under the limit, at least a second.
  const seconds = Math.ceil((depth - limit + 1) / rate);
  return {
    shed: true,
    reason: backlogLimit <= queueLimit ? 'backlog' : 'queue-full',
    retryAfterSeconds: Math.min(Math.max(seconds, 1), Math.max(1, settings.maxRetryAfterSeconds)),
    limit,
  };
}

const WINDOW_SECONDS = 60;
/** Seconds of busy time before the rate seen while busy is trusted. */
const MIN_BUSY_SECONDS = 5;

/**
 * The rate at which requests end (from the results service's "request ended" events, which every
 * gateway receives), over the last minute, in one-second slots. A second counts as busy when the
 * queue held jobs at its sample: then the workers had all they could take, so what ended in busy
 * seconds measures their capacity, which idle seconds would understate.
 */
export class DrainRate {
  private readonly ended = new Array<number>(WINDOW_SECONDS).fill(0);
  private readonly busy = new Array<boolean>(WINDOW_SECONDS).fill(false);
  private lastSecond: number;
  private readonly startSecond: number;

  constructor(nowMs: number = Date.now()) {
    this.lastSecond = Math.floor(nowMs / 1000);
    this.startSecond = this.lastSecond;
  }

  /** One request ended. */
  record(nowMs: number = Date.now()): void {
    this.ended[this.advance(nowMs)]! += 1;
  }

  /** Whether the queue held jobs at this second's sample. */
  markBusy(busy: boolean, nowMs: number = Date.now()): void {
    this.busy[this.advance(nowMs)] = busy;
  }

  /** Requests ended per second: the larger of the whole window's average and the busy seconds' one. */
  perSecond(nowMs: number = Date.now()): number {
    this.advance(nowMs);
    let total = 0;
    let busyEnded = 0;
    let busySeconds = 0;
    for (let i = 0; i < WINDOW_SECONDS; i++) {
      total += this.ended[i]!;
      if (this.busy[i]) {
        busyEnded += this.ended[i]!;
        busySeconds += 1;
      }
    }
    // Young gateways average over what they have seen, but no less than 10 s so one event is not a rate.
    const span = Math.min(WINDOW_SECONDS, Math.max(10, this.lastSecond - this.startSecond + 1));
    const overall = total / span;
    return busySeconds >= MIN_BUSY_SECONDS ? Math.max(overall, busyEnded / busySeconds) : overall;
  }

  /** Clears the slots of the seconds passed since the last call; returns the current slot. */
  private advance(nowMs: number): number {
    const second = Math.floor(nowMs / 1000);
    if (second > this.lastSecond) {
      const steps = Math.min(second - this.lastSecond, WINDOW_SECONDS);
      for (let s = 1; s <= steps; s++) {
        const slot = (this.lastSecond + s) % WINDOW_SECONDS;
        this.ended[slot] = 0;
        this.busy[slot] = false;
      }
      this.lastSecond = second;
    }
    return this.lastSecond % WINDOW_SECONDS;
  }
}

/** How the monitor reads the queue: `Broker.queueDepth` in the gateway. */
export type DepthProbe = () => Promise<number>;

/**
 * Samples the jobs queue once per `intervalMs` (never two checks at once) and answers the
 * admission of each submission from the latest sample, plus the jobs this gateway published
 * since it. A sample older than `staleMs` (the broker is down, or checks fail) sheds nothing.
 */
export class BacklogMonitor {
  readonly drain: DrainRate;
  private depth: number | null = null;
  private sampledAt = 0;
  private acceptedSince = 0;
  private timer: NodeJS.Timeout | null = null;
  private checking = false;

  constructor(
    private readonly probe: DepthProbe,
    readonly settings: SheddingSettings,
    private readonly options: { intervalMs?: number; staleMs?: number; now?: () => number } = {},
  ) {
    this.drain = new DrainRate(this.now());
  }

  get enabled(): boolean {
    return this.settings.maxBacklogSeconds > 0 || this.settings.maxQueuedJobs > 0;
  }

  start(): void {
    if (!this.enabled || this.timer) return;
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.options.intervalMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Forgets the last sample (the broker connection dropped): nothing is shed until the next one. */
  invalidate(): void {
    this.depth = null;
  }

  /** One passive check of the queue; failures leave the sample to go stale. */
  async sample(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const depth = await this.probe();
      this.depth = depth;
      this.sampledAt = this.now();
      this.acceptedSince = 0;
      this.drain.markBusy(depth > 0, this.sampledAt);
    } catch {
      // Unknown: the sample goes stale and nothing is shed on it.
    } finally {
      this.checking = false;
    }
  }

  /** A submission of this gateway's was accepted: counted until the next sample sees it. */
  accepted(): void {
    this.acceptedSince += 1;
  }

  /** A request ended (an event from the results service). */
  ended(): void {
    this.drain.record(this.now());
  }

  admit(): Admission {
    if (!this.enabled) return { shed: false };
    const now = this.now();
    const fresh = this.depth !== null && now - this.sampledAt <= (this.options.staleMs ?? 5000);
    return admission(fresh ? this.depth! + this.acceptedSince : null, this.drain.perSecond(now), this.settings);
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}
