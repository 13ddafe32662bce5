/** When a supervised service is started again after it exits: pure, so it is unit-tested. */
export interface BackoffPolicy {
  /** Delay before the first restart after a run that did not last. */
  initialMs: number;
  /** The delay doubles on each quick exit in a row, up to this. */
  maxMs: number;
  /** A child that stayed up at least this long had a good run: its next restart is quick again. */
  resetAfterMs: number;
}

export const defaultBackoff: BackoffPolicy = { initialMs: 1_000, maxMs: 30_000, resetAfterMs: 60_000 };

export interface Backoff {
  /** Exits in a row that came before `resetAfterMs` of uptime, this one included. */
  quickExits: number;
  /** How long to wait before starting the child again. */
  delayMs: number;
}

/** The back-off after a child exited having run for `uptimeMs`, given the back-off after its previous exit. */
export function nextBackoff(uptimeMs: number, previous: Backoff | undefined, policy: BackoffPolicy): Backoff {
  const quickExits = uptimeMs >= policy.resetAfterMs ? 1 : (previous?.quickExits ?? 0) + 1;
  // 1 s, 2 s, 4 s … capped; Math.min also tames 2 ** n once n is large enough to be Infinity.
  return { quickExits, delayMs: Math.min(policy.maxMs, policy.initialMs * 2 ** (quickExits - 1)) };
}

/** "exit code 1" or "signal SIGKILL": why a child process ended, as Node reports it. */
export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal) return `signal ${signal}`;
  if (code === null) return 'unknown exit';
  return `exit code ${code}`;
}

/** "850 ms", "12.3 s", "4 min 5 s", "2 h 3 min": a duration for a log line. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)} s`;
  const seconds = Math.floor(ms / 1_000);
  if (seconds < 3_600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  return `${Math.floor(seconds / 3_600)} h ${Math.floor((seconds % 3_600) / 60)} min`;
}
