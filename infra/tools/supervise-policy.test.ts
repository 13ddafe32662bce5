import { defaultBackoff, describeExit, formatDuration, nextBackoff, type Backoff } from './supervise-policy';

describe('nextBackoff', () => {
  it('waits 1 s after a first quick exit, then doubles up to 30 s', () => {
    let backoff: Backoff | undefined;
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      backoff = nextBackoff(500, backoff, defaultBackoff);
      delays.push(backoff.delayMs);
    }
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
  });

  it('starts over at 1 s once the child stayed up long enough', () => {
    let backoff = nextBackoff(10, undefined, defaultBackoff);
    backoff = nextBackoff(10, backoff, defaultBackoff);
    backoff = nextBackoff(10, backoff, defaultBackoff);
    expect(backoff).toEqual({ quickExits: 3, delayMs: 4_000 });
    expect(nextBackoff(defaultBackoff.resetAfterMs, backoff, defaultBackoff)).toEqual({
      quickExits: 1,
      delayMs: 1_000,
    });
    expect(nextBackoff(defaultBackoff.resetAfterMs - 1, backoff, defaultBackoff)).toEqual({
      quickExits: 4,
      delayMs: 8_000,
    });
  });

  it('stays at the cap however long the child keeps failing', () => {
    expect(nextBackoff(0, { quickExits: 5_000, delayMs: 30_000 }, defaultBackoff)).toEqual({
      quickExits: 5_001,
      delayMs: 30_000,
    });
  });
});

describe('describeExit and formatDuration', () => {
  it('say why and after how long a child ended', () => {
    expect(describeExit(1, null)).toBe('exit code 1');
    expect(describeExit(0, null)).toBe('exit code 0');
    expect(describeExit(null, 'SIGKILL')).toBe('signal SIGKILL');
    expect(formatDuration(850)).toBe('850 ms');
    expect(formatDuration(12_345)).toBe('12.3 s');
    expect(formatDuration(245_000)).toBe('4 min 5 s');
    expect(formatDuration(7_380_000)).toBe('2 h 3 min');
  });
});
