import type { Logger } from '@cxr/logging';
import { checkDependencies, type Check, type HealthReport } from './health';
import { realTimers, type Timers } from './timers';

export interface DependencyGateOptions {
  /** Named checks, each resolving when its dependency answers, e.g. `{ s3: () => store.ping() }`. */
  checks: Record<string, Check>;
  /** Pause between the end of one round of checks and the start of the next. Default 5 000 ms. */
  intervalMs?: number;
  /** How long one check may take; a hung dependency counts as down. Default 2 000 ms. */
  timeoutMs?: number;
  /** Failed rounds in a row before an open gate closes (1 = at the first). Default 1. */
  downAfter?: number;
  /** Good rounds in a row before a closed gate opens again. Default 1. */
  upAfter?: number;
  /** The gate closed: some dependency is down (also called when the very first round fails). */
  onDown?: (report: HealthReport) => void | Promise<void>;
  /** The gate opened: every dependency answers (also called when the very first round succeeds). */
  onUp?: (report: HealthReport) => void | Promise<void>;
  logger?: Logger;
  timers?: Timers;
}

export interface WaitOptions {
  signal?: AbortSignal;
  /** Give up after this long. Default: wait as long as it takes (or until `signal` aborts). */
  timeoutMs?: number;
}

/** `waitUntilReady` gave up: timed out, aborted, or the gate was stopped. */
export class DependenciesNotReadyError extends Error {
  override readonly name = 'DependenciesNotReadyError';
  readonly code = 'DEPENDENCIES_NOT_READY';
  constructor(
    message: string,
    readonly report: HealthReport | null,
  ) {
    super(message);
  }
}

type State = 'unknown' | 'up' | 'down';

/**
 * Watches the dependencies a worker needs to do its work (object store, database) and tells
 * it when to stop taking work and when to take it again: a worker whose S3 is down would
 * otherwise take every job only to fail it. Each round runs every check at once; the gate
 * is ready when they all pass. `onDown`/`onUp` are called on each change (and for the first
 * round's verdict), one at a time and in order; the next round waits until they return.
 *
 *     const gate = new DependencyGate({
 *       checks: { s3: () => store.ping() },
 *       onDown: () => broker.pauseConsumers(),
 *       onUp: () => broker.resumeConsumers(),
 *     });
 *     gate.start();
 */
export class DependencyGate {
  private state: State = 'unknown';
  private goodRounds = 0;
  private badRounds = 0;
  private lastReport: HealthReport | null = null;
  private timer: unknown = null;
  private running = false;
  private stopped = false;
  private round: Promise<HealthReport> | null = null;
  private readonly waiters = new Set<{ resolve: () => void; reject: (error: Error) => void }>();
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly downAfter: number;
  private readonly upAfter: number;
  private readonly timers: Timers;

  constructor(private readonly options: DependencyGateOptions) {
    this.intervalMs = options.intervalMs ?? 5_000;
    this.timeoutMs = options.timeoutMs ?? 2_000;
    this.downAfter = Math.max(1, options.downAfter ?? 1);
    this.upAfter = Math.max(1, options.upAfter ?? 1);
    this.timers = options.timers ?? realTimers;
  }

  /** Every dependency answered in the latest verdict. False until the first round is done. */
  get ready(): boolean {
    return this.state === 'up';
  }

  /** The latest round's report (each dependency's state), or null before the first round. */
  get report(): HealthReport | null {
    return this.lastReport;
  }

  /** Runs a round of checks now, then one every `intervalMs`. Idempotent. */
  start(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    void this.loop();
  }

  /** Stops checking; pending `waitUntilReady` calls reject. No callback is called after this. */
  stop(): void {
    this.stopped = true;
    this.running = false;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    for (const waiter of [...this.waiters]) {
      waiter.reject(new DependenciesNotReadyError('dependency gate stopped', this.lastReport));
    }
  }

  /**
   * Runs one round of checks (or joins the one under way), updates the verdict, calls the
   * callbacks of a change, and returns the round's report.
   */
  check(): Promise<HealthReport> {
    this.round ??= this.runRound().finally(() => {
      this.round = null;
    });
    return this.round;
  }

  /** Runs a round now and says whether every dependency answered (what `holdThroughOutages` asks). */
  async checkNow(): Promise<boolean> {
    return (await this.check()).status === 'ok';
  }

  /** Resolves once ready (at once if ready now); rejects on timeout, abort or `stop`. */
  waitUntilReady({ signal, timeoutMs }: WaitOptions = {}): Promise<void> {
    if (this.ready) return Promise.resolve();
    if (this.stopped) return Promise.reject(new DependenciesNotReadyError('dependency gate stopped', this.lastReport));
    return new Promise<void>((resolve, reject) => {
      let timer: unknown = null;
      const finish = () => {
        this.waiters.delete(waiter);
        if (timer !== null) this.timers.clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const waiter = {
        resolve: () => {
          finish();
          resolve();
        },
        reject: (error: Error) => {
          finish();
          reject(error);
        },
      };
      const onAbort = () =>
        waiter.reject(new DependenciesNotReadyError(`not ready: ${this.describe()} (aborted)`, this.lastReport));
      if (signal?.aborted) return onAbort();
      this.waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs !== undefined) {
        timer = this.timers.setTimeout(
          () =>
            waiter.reject(
              new DependenciesNotReadyError(`not ready after ${timeoutMs} ms: ${this.describe()}`, this.lastReport),
            ),
          timeoutMs,
        );
      }
    });
  }

  private async loop(): Promise<void> {
    if (!this.running) return;
    await this.check();
    if (!this.running) return;
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      void this.loop();
    }, this.intervalMs);
  }

  private async runRound(): Promise<HealthReport> {
    const report = await checkDependencies(this.options.checks, this.timeoutMs, this.timers);
    if (this.stopped) return report;
    this.lastReport = report;
    if (report.status === 'ok') {
      this.goodRounds += 1;
      this.badRounds = 0;
      if (this.state !== 'up' && (this.state === 'unknown' || this.goodRounds >= this.upAfter)) {
        await this.change('up', report);
      }
    } else {
      this.badRounds += 1;
      this.goodRounds = 0;
      if (this.state !== 'down' && (this.state === 'unknown' || this.badRounds >= this.downAfter)) {
        await this.change('down', report);
      }
    }
    return report;
  }

  private async change(state: 'up' | 'down', report: HealthReport): Promise<void> {
    const logger = this.options.logger;
    this.state = state;
    if (state === 'up') {
      logger?.info({ dependencies: report.dependencies }, 'dependencies up: ready');
      for (const waiter of [...this.waiters]) waiter.resolve();
    } else {
      logger?.warn({ dependencies: report.dependencies }, `dependencies down: ${this.describe()}; not ready`);
    }
    const callback = state === 'up' ? this.options.onUp : this.options.onDown;
    try {
      await callback?.(report);
    } catch (error) {
      logger?.error({ err: error }, `dependency gate ${state === 'up' ? 'onUp' : 'onDown'} failed`);
    }
  }

  /** "s3: connect ECONNREFUSED, db: no answer within 2000 ms", or "no check done yet". */
  private describe(): string {
    if (!this.lastReport) return 'no check done yet';
    const down = Object.entries(this.lastReport.dependencies).filter(([, s]) => !s.up);
    if (down.length === 0) return 'all dependencies up';
    return down.map(([name, s]) => `${name}: ${s.error ?? 'down'}`).join(', ');
  }
}

/** What a DependencyGate pauses: a broker's consumers. */
export interface PausableConsumers {
  pauseConsumers(): Promise<void>;
  resumeConsumers(): Promise<void>;
}

/**
 * Starts a worker's consumers paused and keeps them paused while any of `checks` fails: they
 * consume only once every dependency answers. Returns the started gate (stop it on shutdown).
 */
export async function gateConsumers(
  consumers: PausableConsumers,
  checks: Record<string, Check>,
  logger: Logger,
): Promise<DependencyGate> {
  await consumers.pauseConsumers();
  const gate = new DependencyGate({
    checks,
    logger,
    onDown: () => consumers.pauseConsumers(),
    onUp: () => consumers.resumeConsumers(),
  });
  gate.start();
  return gate;
}
