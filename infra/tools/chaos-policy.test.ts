import {
  accumulateResults,
  FAULTS,
  formatReport,
  isInputFailure,
  newResultsAccumulator,
  nextFaultAtMs,
  paceGapMs,
  parseFaults,
  parseOptions,
  resultsDuringRun,
  retryDelayMs,
  shouldRetry,
  tally,
  UsageError,
  verdict,
  type FaultRecord,
  type ResultsSample,
  type Submission,
} from './chaos-policy';

function submission(overrides: Partial<Submission>): Submission {
  return { key: 'k', ids: ['a'], outcome: 'classified', errorCodes: [], results: 1, attempts: 1, ...overrides };
}

function faultRecord(overrides: Partial<FaultRecord>): FaultRecord {
  return {
    fault: 'kill-gateway',
    atMs: 5_000,
    action: 'SIGKILL gateway child 1',
    error: null,
    inFlightAtFault: 4,
    openAtFault: 3,
    submittedDuringRecovery: 7,
    serverBackMs: null,
    healthMs: 1_500,
    endToEndMs: 2_000,
    probe: 'classified',
    whileDown: null,
    ...overrides,
  };
}

describe('options', () => {
  it('has the documented defaults: 200 requests, 8 at once, every fault, 10 s outages', () => {
    expect(parseOptions([])).toEqual({
      requests: 200,
      concurrency: 8,
      faults: [...FAULTS],
      everySeconds: 15,
      outageSeconds: 10,
      timeoutSeconds: 600,
      hard: false,
      jsonPath: null,
      burst: false,
      overlap: false,
    });
  });

  it('reads every flag', () => {
    const o = parseOptions(
      '--requests 300 --concurrency 4 --faults kill-gateway,restart-s3 --every 5 --outage 2.5 --timeout 90 --hard --burst --overlap --json /tmp/r.json'.split(
        ' ',
      ),
    );
    expect(o).toEqual({
      requests: 300,
      concurrency: 4,
      faults: ['kill-gateway', 'restart-s3'],
      everySeconds: 5,
      outageSeconds: 2.5,
      timeoutSeconds: 90,
      hard: true,
      jsonPath: '/tmp/r.json',
      burst: true,
      overlap: true,
    });
  });

  it('repeats the fault list for --rounds', () => {
    expect(parseOptions(['--faults', 'kill-results,kill-gateway', '--rounds', '2']).faults).toEqual([
      'kill-results',
      'kill-gateway',
      'kill-results',
      'kill-gateway',
    ]);
  });

  it('refuses what it does not understand, saying what', () => {
    expect(() => parseOptions(['--requests', '0'])).toThrow(UsageError);
    expect(() => parseOptions(['--requests', '1.5'])).toThrow(/whole number/);
    expect(() => parseOptions(['--every', 'soon'])).toThrow(/--every/);
    expect(() => parseOptions(['--requests'])).toThrow(/needs a value/);
    expect(() => parseOptions(['--requests', '--hard'])).toThrow(/needs a value/);
    expect(() => parseOptions(['--speed', '3'])).toThrow(/unknown option --speed/);
  });
});

describe('faults', () => {
  it('expands all, keeps order and repeats, and knows none', () => {
    expect(parseFaults('all')).toEqual([...FAULTS]);
    expect(parseFaults('restart-s3, kill-gateway,restart-s3')).toEqual(['restart-s3', 'kill-gateway', 'restart-s3']);
    expect(parseFaults('none')).toEqual([]);
  });

  it('names an unknown fault', () => {
    expect(() => parseFaults('kill-gateway,kill-everything')).toThrow(/unknown fault 'kill-everything'/);
    expect(() => parseFaults(' , ')).toThrow(UsageError);
  });

  it('schedules the first fault one interval in, the next one interval later and after the recovery', () => {
    expect(nextFaultAtMs(null, 5, false)).toBe(5_000);
    // Recovered quickly: on the clock.
    expect(nextFaultAtMs({ atMs: 5_000, recoveredAtMs: 8_000 }, 5, false)).toBe(10_000);
    // Slow to recover: right after the recovery, unless faults may overlap.
    expect(nextFaultAtMs({ atMs: 5_000, recoveredAtMs: 31_000 }, 5, false)).toBe(31_000);
    expect(nextFaultAtMs({ atMs: 5_000, recoveredAtMs: 31_000 }, 5, true)).toBe(10_000);
    // Never recovered (the deadline came): on the clock.
    expect(nextFaultAtMs({ atMs: 5_000, recoveredAtMs: null }, 5, false)).toBe(10_000);
  });
});

describe('the client', () => {
  it('spreads the requests left over the faults left and one more interval', () => {
    // 6 faults every 10 s, 60 requests: one every 70 s / 60.
    expect(paceGapMs(60, 6, 10)).toBeCloseTo(1166.67, 1);
    // A slow restart left 30 requests for the last fault: they span it and one more interval.
    expect(paceGapMs(30, 1, 10)).toBeCloseTo(666.67, 1);
    expect(paceGapMs(30, 0, 10)).toBe(0);
    expect(paceGapMs(0, 3, 10)).toBe(0);
  });

  it('backs off from 250 ms doubling to 5 s, with at most 25 % jitter', () => {
    expect([1, 2, 3, 4, 5, 6, 10].map((a) => retryDelayMs(a, 0.5))).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000]);
    expect(retryDelayMs(1, 0)).toBe(188);
    expect(retryDelayMs(1, 1)).toBe(313);
    expect(retryDelayMs(100, 1)).toBe(6250);
  });

  it('retries no answer, 429 and 5xx, and nothing else', () => {
    expect([null, 429, 500, 502, 503].map(shouldRetry)).toEqual([true, true, true, true, true]);
    expect([200, 202, 400, 401, 404, 409, 413].map(shouldRetry)).toEqual([
      false,
      false,
      false,
      false,
      false,
      false,
      false,
    ]);
  });
});

describe('tally', () => {
  it('tells input failures from infrastructure failures', () => {
    for (const code of [
      'IMAGE_DECODE',
      'IMAGE_MISSING',
      'MODEL_LOAD',
      'MODEL_INTEGRITY',
      'INFERENCE_FAILED',
      'OUTPUT_INVALID',
    ])
      expect(isInputFailure(code)).toBe(true);
    for (const code of ['DELIVERY_LIMIT', 'NOT_COMPLETED', 'SOMETHING_NEW']) expect(isInputFailure(code)).toBe(false);
  });

  it('counts every outcome once, failures by code', () => {
    const t = tally([
      submission({ key: '1', attempts: 3 }),
      submission({ key: '2', expectedLabel: 'dark', label: 'bright' }),
      submission({ key: '3', outcome: 'failed', errorCodes: ['IMAGE_DECODE'] }),
      submission({ key: '4', outcome: 'failed', errorCodes: ['DELIVERY_LIMIT'] }),
      submission({ key: '5', outcome: 'failed', errorCodes: ['NOT_COMPLETED'] }),
      submission({ key: '6', outcome: 'open', results: 0 }),
      submission({ key: '7', outcome: 'not-found', results: 0 }),
      submission({ key: '8', outcome: 'not-accepted', ids: [], results: null, attempts: 40 }),
      submission({ key: '9', outcome: 'rejected', ids: [], results: null, rejectedStatus: 409 }),
    ]);
    expect(t).toEqual({
      requests: 9,
      accepted: 7,
      retries: 41,
      classified: 2,
      wrongLabel: 1,
      failed: 3,
      failedByCode: { IMAGE_DECODE: 1, DELIVERY_LIMIT: 1, NOT_COMPLETED: 1 },
      infrastructureFailures: 2,
      pending: 1,
      lost: 1,
      duplicated: 0,
      recordedMoreThanOnce: 0,
      keysWithSeveralIds: 0,
      notAccepted: 1,
      rejected: 1,
      rejectedByStatus: { '409': 1 },
      resultsCounted: true,
    });
  });

  it('counts as duplicated a request recorded twice and a key answered with two ids', () => {
    const t = tally([
      submission({ key: '1', results: 2 }),
      submission({ key: '2', ids: ['a', 'b'] }),
      submission({ key: '3' }),
    ]);
    expect([t.duplicated, t.recordedMoreThanOnce, t.keysWithSeveralIds]).toEqual([2, 1, 1]);
  });

  it('says when results could not be counted', () => {
    expect(tally([submission({ results: null })]).resultsCounted).toBe(false);
    // A submission never accepted has nothing to count.
    expect(tally([submission({ ids: [], outcome: 'not-accepted', results: null })]).resultsCounted).toBe(true);
  });
});

describe('verdict', () => {
  const clean = tally([submission({})]);

  it('passes a clean run', () => {
    expect(verdict(clean, [faultRecord({})])).toEqual({ ok: true, problems: [] });
  });

  it('fails on anything lost, duplicated, pending, failed for the infrastructure, or never accepted', () => {
    const t = tally([
      submission({ key: '1', outcome: 'not-found' }),
      submission({ key: '2', results: 2 }),
      submission({ key: '3', outcome: 'open' }),
      submission({ key: '4', outcome: 'failed', errorCodes: ['DELIVERY_LIMIT'] }),
      submission({ key: '5', outcome: 'not-accepted', ids: [] }),
    ]);
    expect(verdict(t, []).problems).toEqual([
      '1 lost',
      '1 duplicated',
      '1 pending at the deadline',
      '1 failed for an infrastructure reason',
      '1 never accepted before the deadline',
    ]);
  });

  it('does not fail a request that failed for its own image', () => {
    const t = tally([submission({ outcome: 'failed', errorCodes: ['IMAGE_DECODE'] })]);
    expect(verdict(t, []).ok).toBe(true);
  });

  it('fails when a fault was not injected or the system never came back', () => {
    const v = verdict(clean, [faultRecord({ error: 'no child' }), faultRecord({ endToEndMs: null, probe: 'open' })]);
    expect(v.problems).toEqual(['1 fault(s) could not be carried out', '1 fault(s) not recovered from']);
  });
});

describe('results service counters', () => {
  const sample = (recorded: number, duplicates = 0, stale = 0): ResultsSample => ({
    recorded,
    duplicates,
    started: recorded,
    refused: { forged: 0, stale, replayed: 0, mismatched: 0 },
  });

  it('counts from the first sample on, adding up the processes across restarts', () => {
    let acc = newResultsAccumulator();
    for (const s of [sample(10), sample(15, 1), sample(20, 1, 2), sample(3), sample(8, 0, 1)]) {
      acc = accumulateResults(acc, s);
    }
    expect(acc.restartsSeen).toBe(1);
    // Before the run: 10. First process during the run: 20 - 10, then the second: 8.
    expect(resultsDuringRun(acc)).toEqual({
      recorded: 18,
      duplicates: 1,
      refused: { forged: 0, stale: 3, replayed: 0, mismatched: 0 },
    });
  });

  it('is zero before any sample', () => {
    expect(resultsDuringRun(newResultsAccumulator())).toEqual({ recorded: 0, duplicates: 0, refused: {} });
  });
});

describe('report', () => {
  it('prints every count, each fault with its recovery, and the verdict', () => {
    const t = tally([
      submission({ key: '1' }),
      submission({ key: '2', outcome: 'failed', errorCodes: ['DELIVERY_LIMIT'] }),
    ]);
    const faults = [
      faultRecord({}),
      faultRecord({
        fault: 'restart-rabbitmq',
        atMs: 10_000,
        action: 'SIGTERM to rabbitmq',
        serverBackMs: 14_000,
        healthMs: 16_000,
        endToEndMs: 21_000,
      }),
      faultRecord({ fault: 'kill-results', error: 'results has no live supervisor' }),
    ];
    const text = formatReport(
      t,
      faults,
      { recorded: 2, duplicates: 1, refused: { stale: 1 }, restartsSeen: 1 },
      verdict(t, faults),
    );
    expect(text).toContain('accepted      2 (0 submission retries');
    expect(text).toContain('failed        1: DELIVERY_LIMIT 1 (1 for an infrastructure reason)');
    expect(text).toContain('duplicated    0 (recorded more than once: 0; keys answered with two ids: 0)');
    expect(text).toContain('recorded 2, duplicates ignored 1, refused 1 (stale 1)');
    expect(text).toMatch(/kill-gateway\s+\+5\.0 s\s+end to end\s+2\.0 s\s+health\s+1\.5 s/);
    expect(text).toContain('(4 in flight at the fault, 3 accepted; 7 submitted until recovered; probe classified)');
    expect(text).toContain('server back after 14.0 s, end to end 7.0 s after that');
    expect(text).toMatch(/kill-results\s+\+5\.0 s {2}FAILED: results has no live supervisor/);
    expect(text).toContain(
      'verdict: FAIL — 1 failed for an infrastructure reason; 1 fault(s) could not be carried out',
    );
  });
});
