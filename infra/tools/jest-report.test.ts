import { summarize, type JestReport, type Run } from './jest-report';

function report(overrides: Partial<JestReport> = {}): JestReport {
  return {
    numPassedTests: 3,
    numFailedTests: 0,
    numPendingTests: 1,
    numFailedTestSuites: 0,
    numRuntimeErrorTestSuites: 0,
    testResults: [{ name: '/repo/a.test.ts', status: 'passed', message: '', assertionResults: [] }],
    ...overrides,
  };
}

const run = (r: unknown, label = 'unit'): Run => ({ label, file: `/tmp/${label}.json`, text: JSON.stringify(r) });

describe('summarize', () => {
  it('adds the counts of both runs and passes when nothing failed', () => {
    expect(summarize([run(report()), run(report({ numPassedTests: 2, numPendingTests: 0 }), 'chaos')])).toEqual({
      line: 'tests: 5 passed, 0 failed, 1 skipped; suites: 0 failed, 0 with runtime errors',
      problems: [],
      ok: true,
    });
  });

  it('fails on a failed test', () => {
    const summary = summarize([run(report({ numFailedTests: 1, numFailedTestSuites: 1 }))]);
    expect(summary.line).toBe('tests: 3 passed, 1 failed, 1 skipped; suites: 1 failed, 0 with runtime errors');
    expect(summary.ok).toBe(false);
  });

  it('fails on, and names, a suite that failed with every test passed (an afterAll error)', () => {
    const summary = summarize(
      [
        run(
          report({
            numFailedTestSuites: 1,
            numRuntimeErrorTestSuites: 1,
            testResults: [
              {
                name: '/repo/tests/e2e/x.test.ts',
                status: 'failed',
                message: '  ● Test suite failed to run\n\n    boom in afterAll\n\n      at x.test.ts:2:3',
                assertionResults: [{ status: 'passed' }],
              },
            ],
          }),
        ),
      ],
      '/repo',
    );
    expect(summary).toEqual({
      line: 'tests: 3 passed, 0 failed, 1 skipped; suites: 1 failed, 1 with runtime errors',
      problems: ['suite failed: tests/e2e/x.test.ts: boom in afterAll'],
      ok: false,
    });
  });

  it('names a suite that could not run, from its testExecError when the report has one', () => {
    const summary = summarize([
      run(
        report({
          numPassedTests: 0,
          numPendingTests: 0,
          numFailedTestSuites: 1,
          numRuntimeErrorTestSuites: 1,
          testResults: [
            {
              name: 'b.test.ts',
              status: 'failed',
              message: '',
              testExecError: { message: "Cannot find module './gone' from 'b.test.ts'" },
              assertionResults: [],
            },
          ],
        }),
      ),
    ]);
    expect(summary.problems).toEqual(["suite failed: b.test.ts: Cannot find module './gone' from 'b.test.ts'"]);
    expect(summary.ok).toBe(false);
  });

  it('fails with a message naming the run when its report is missing or unreadable', () => {
    const summary = summarize([
      { label: 'unit integration e2e', file: '/tmp/1.json', text: null },
      { label: 'chaos', file: '/tmp/2.json', text: '{"numPassedTests": 1,' },
      run({ not: 'a report' }, 'other'),
    ]);
    expect(summary.problems).toEqual([
      'jest (unit integration e2e) wrote no report (/tmp/1.json): it stopped before the end of its run',
      expect.stringMatching(/^jest \(chaos\) left an unreadable report \(\/tmp\/2\.json\): .*JSON/),
      'jest (other) left a report without its counts (/tmp/other.json)',
    ]);
    expect(summary.ok).toBe(false);
  });

  it('fails when no test ran, or when jest was interrupted', () => {
    const none = report({ numPassedTests: 0, numPendingTests: 0, testResults: [] });
    expect(summarize([run(none)])).toMatchObject({ problems: ['no test ran'], ok: false });
    expect(summarize([run(report({ wasInterrupted: true }))])).toMatchObject({
      problems: ['jest (unit) was interrupted'],
      ok: false,
    });
    expect(summarize([]).ok).toBe(false);
  });
});
