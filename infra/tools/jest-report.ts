// The closing lines of infra/test.sh, from the JSON reports (--json --outputFile) of its jest runs.
// A run counts as failed for any failed test, but also for a failed suite with no failed test
// (an error in a hook such as afterAll, a module that does not load, a crashed worker), and for
// a report that is missing or unreadable (jest died before writing it): those say "0 failed"
// in the test counts, so they are counted and named apart.

/** The parts of jest's JSON report read here. */
export interface JestReport {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests?: number;
  numFailedTestSuites: number;
  numRuntimeErrorTestSuites: number;
  wasInterrupted?: boolean;
  testResults?: {
    name: string;
    status: string;
    message?: string;
    testExecError?: { message?: string } | null;
    assertionResults?: { status: string }[];
  }[];
}

export interface Run {
  /** What the run covered, for the messages (`unit integration e2e`, `chaos`). */
  label: string;
  file: string;
  /** The report's text; null when jest left no file. */
  text: string | null;
}

export interface Summary {
  /** The counts of every readable report: the closing line. */
  line: string;
  /** What failed apart from failed tests, one line each, printed before the closing line. */
  problems: string[];
  ok: boolean;
}

function isReport(value: unknown): value is JestReport {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return [
    'numPassedTests',
    'numFailedTests',
    'numPendingTests',
    'numFailedTestSuites',
    'numRuntimeErrorTestSuites',
  ].every((k) => typeof r[k] === 'number');
}

function firstLine(text: string | undefined): string {
  // Jest's messages start with blank lines and "● Test suite failed to run"; the reason follows.
  const lines = (text ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('●'));
  return lines[0] ?? 'no message';
}

function relative(path: string, root: string): string {
  return root && path.startsWith(`${root}/`) ? path.slice(root.length + 1) : path;
}

export function summarize(runs: Run[], root = ''): Summary {
  const t = { passed: 0, failed: 0, skipped: 0, failedSuites: 0, runtimeErrors: 0 };
  const problems: string[] = [];
  for (const run of runs) {
    if (run.text === null) {
      problems.push(`jest (${run.label}) wrote no report (${run.file}): it stopped before the end of its run`);
      continue;
    }
    let report: unknown;
    try {
      report = JSON.parse(run.text);
    } catch (error) {
      problems.push(`jest (${run.label}) left an unreadable report (${run.file}): ${(error as Error).message}`);
      continue;
    }
    if (!isReport(report)) {
      problems.push(`jest (${run.label}) left a report without its counts (${run.file})`);
      continue;
    }
    t.passed += report.numPassedTests;
    t.failed += report.numFailedTests;
    t.skipped += report.numPendingTests + (report.numTodoTests ?? 0);
    t.failedSuites += report.numFailedTestSuites;
    t.runtimeErrors += report.numRuntimeErrorTestSuites;
    if (report.wasInterrupted) problems.push(`jest (${run.label}) was interrupted`);
    for (const suite of report.testResults ?? []) {
      const failedTests = (suite.assertionResults ?? []).filter((a) => a.status === 'failed').length;
      // A suite that failed with no failed test, or with an error of its own: its tests' counts hide it.
      if (suite.status === 'failed' && (failedTests === 0 || suite.testExecError)) {
        const why = firstLine(suite.testExecError?.message ?? suite.message);
        problems.push(`suite failed: ${relative(suite.name, root)}: ${why}`);
      }
    }
  }
  if (runs.length > 0 && problems.length === 0 && t.passed + t.failed + t.skipped === 0) problems.push('no test ran');
  const line =
    `tests: ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped; ` +
    `suites: ${t.failedSuites} failed, ${t.runtimeErrors} with runtime errors`;
  const ok =
    runs.length > 0 && problems.length === 0 && t.failed === 0 && t.failedSuites === 0 && t.runtimeErrors === 0;
  return { line, problems, ok };
}
