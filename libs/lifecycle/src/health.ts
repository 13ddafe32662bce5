import { realTimers, type Timers } from './timers';

export type Check = () => Promise<void>;

export interface DependencyState {
  up: boolean;
  latency_ms: number;
  error?: string;
}

export interface HealthReport {
  status: 'ok' | 'degraded';
  dependencies: Record<string, DependencyState>;
}

/** Runs every check at once, each bounded by `timeoutMs`; a hung dependency counts as down. */
export async function checkDependencies(
  checks: Record<string, Check>,
  timeoutMs = 2_000,
  timers: Timers = realTimers,
): Promise<HealthReport> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]): Promise<[string, DependencyState]> => {
      const started = performance.now();
      let timer: unknown;
      try {
        await Promise.race([
          check(),
          new Promise((_, reject) => {
            timer = timers.setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
        return [name, { up: true, latency_ms: Math.round(performance.now() - started) }];
      } catch (error) {
        return [
          name,
          {
            up: false,
            latency_ms: Math.round(performance.now() - started),
            error: (error as Error).message.slice(0, 200),
          },
        ];
      } finally {
        timers.clearTimeout(timer);
      }
    }),
  );
  const dependencies = Object.fromEntries(entries);
  return { status: entries.every(([, s]) => s.up) ? 'ok' : 'degraded', dependencies };
}
