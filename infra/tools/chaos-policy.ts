// The pure parts of `npm run chaos` (infra/tools/chaos.ts): its options and fault schedule, the
// client's retry back-off, the tally of what happened to every request, the verdict and the
// printed report. Nothing here touches a process, a socket or the clock, so it is unit-tested.

export const FAULTS = [
  'kill-gateway',
  'kill-results',
  'kill-inference',
  'restart-rabbitmq',
  'restart-database',
  'restart-s3',
] as const;
export type Fault = (typeof FAULTS)[number];

export function isFault(name: string): name is Fault {
  return (FAULTS as readonly string[]).includes(name);
}

export interface ChaosOptions {
  requests: number;
  concurrency: number;
  /** In the order they are injected, `--rounds` times over. */
  faults: Fault[];
  everySeconds: number;
  /** How long a stopped server stays down. */
  outageSeconds: number;
  /** Submissions, faults and the wait for every outcome end by then (the final checks take a little longer). */
  timeoutSeconds: number;
  /** Stop servers with SIGKILL instead of the SIGTERM that infra/stack.sh uses. */
  hard: boolean;
  /** Also write the report as JSON here. */
  jsonPath: string | null;
  /** Submit as fast as the concurrency allows instead of spreading the requests over the fault schedule. */
  burst: boolean;
  /** Inject each fault on the clock, without waiting for the system to recover from the one before. */
  overlap: boolean;
}

export class UsageError extends Error {}

export const USAGE = `usage: npm run chaos -- [--requests N] [--concurrency C] [--faults LIST] [--rounds R]
                        [--every SECONDS] [--overlap] [--outage SECONDS] [--timeout SECONDS] [--burst] [--hard]
                        [--json FILE]
  --requests N       classification requests to submit (200)
  --concurrency C    clients submitting at once, each waiting for its request's outcome (8)
  --faults LIST      comma-separated, injected in this order: ${FAULTS.join(', ')}; all = every one (all)
  --rounds R         inject the fault list R times (1)
  --every SECONDS    from one fault to the next, which also waits until the system recovered from
                     the one before, so each recovery is measured alone (15)
  --overlap          inject on the clock alone: a fault may hit a system still recovering
  --outage SECONDS   how long a restarted server stays down (10)
  --timeout SECONDS  submissions, faults and the wait for every outcome end by then; requests still
                     open are reported pending (600)
  --burst            submit as fast as the concurrency allows (by default the requests are spread
                     over the fault schedule, and each fault waits, up to 3 s, for every client to
                     have one in flight)
  --hard             stop servers with SIGKILL instead of SIGTERM
  --json FILE        also write the report as JSON`;

/** `all` is every fault; names may repeat; an unknown name is a usage error. */
export function parseFaults(list: string): Fault[] {
  const names = list
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  if (names.length === 0) throw new UsageError('--faults needs at least one fault (or none: --faults none)');
  if (names.length === 1 && names[0] === 'none') return [];
  const faults: Fault[] = [];
  for (const name of names) {
    if (name === 'all') faults.push(...FAULTS);
    else if (isFault(name)) faults.push(name);
    else throw new UsageError(`unknown fault '${name}'; known: ${FAULTS.join(', ')}, all, none`);
  }
  return faults;
}

function wholeNumber(flag: string, value: string, min: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`${flag} takes a whole number ≥ ${min} (got '${value}')`);
  }
  return n;
}

function seconds(flag: string, value: string, min: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min) {
    throw new UsageError(`${flag} takes a number of seconds ≥ ${min} (got '${value}')`);
  }
  return n;
}

export function parseOptions(argv: readonly string[]): ChaosOptions {
  const options: ChaosOptions = {
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
  };
  let rounds = 1;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const switches = { '--hard': 'hard', '--burst': 'burst', '--overlap': 'overlap' } as const;
    if (flag in switches) {
      options[switches[flag as keyof typeof switches]] = true;
      continue;
    }
    const value = argv[i + 1];
    if (value === undefined || value.startsWith('--')) throw new UsageError(`${flag} needs a value`);
    i += 1;
    switch (flag) {
      case '--requests':
        options.requests = wholeNumber(flag, value, 1);
        break;
      case '--concurrency':
        options.concurrency = wholeNumber(flag, value, 1);
        break;
      case '--faults':
        options.faults = parseFaults(value);
        break;
      case '--rounds':
        rounds = wholeNumber(flag, value, 1);
        break;
      case '--every':
        options.everySeconds = seconds(flag, value, 0);
        break;
      case '--outage':
        options.outageSeconds = seconds(flag, value, 0);
        break;
      case '--timeout':
        options.timeoutSeconds = seconds(flag, value, 1);
        break;
      case '--json':
        options.jsonPath = value;
        break;
      default:
        throw new UsageError(`unknown option ${flag}`);
    }
  }
  options.faults = Array.from({ length: rounds }, () => options.faults).flat();
  return options;
}

/**
 * When the next fault goes in, in milliseconds after the start: the first one interval in (traffic
 * flows by then); each next one an interval after the one before, and, unless faults may
 * overlap, not before the system recovered from it end to end, so that each recovery is
 * measured on its own. (A fault never starts before the one ahead of it was carried out: a
 * server restart takes its outage and the server's start.)
 */
export function nextFaultAtMs(
  previous: { atMs: number; recoveredAtMs: number | null } | null,
  everySeconds: number,
  overlap: boolean,
): number {
  const every = Math.round(everySeconds * 1000);
  if (previous === null) return every;
  const byClock = previous.atMs + every;
  return overlap || previous.recoveredAtMs === null ? byClock : Math.max(byClock, previous.recoveredAtMs);
}

/**
 * The least time between two submissions, so that the requests left last until one interval
 * after the last fault: the faults left (the one under way included) and one more interval,
 * shared by the requests left. Recomputed before each submission, so a fault that takes longer
 * than its interval (a server slow to start) stretches the rest. No faults left: no wait.
 */
export function paceGapMs(requestsLeft: number, faultsLeft: number, everySeconds: number): number {
  if (requestsLeft <= 0 || faultsLeft <= 0) return 0;
  return ((faultsLeft + 1) * everySeconds * 1000) / requestsLeft;
}

/** A careful client's wait before retry `attempt` (1, 2, …): 250 ms doubling to 5 s, with jitter of up to ±25 %. */
export function retryDelayMs(attempt: number, random: number): number {
  const base = Math.min(5_000, 250 * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.75 + 0.5 * Math.min(1, Math.max(0, random))));
}

/** Whether a submission's HTTP answer (or no answer: null) should be retried with the same key. */
export function shouldRetry(status: number | null): boolean {
  return status === null || status === 429 || status >= 500;
}

/**
 * Failure codes that say the image or the model is at fault: the request failed for a reason of
 * its own, once, which no infrastructure fault explains. Every other code (DELIVERY_LIMIT,
 * NOT_COMPLETED, anything unknown) is an infrastructure failure.
 */
export function isInputFailure(code: string): boolean {
  return (
    code.startsWith('IMAGE') || code.startsWith('MODEL') || code === 'INFERENCE_FAILED' || code === 'OUTPUT_INVALID'
  );
}

/** What became of one submission (one Idempotency-Key), as the client and the database saw it. */
export interface Submission {
  key: string;
  /** Every request id the gateway answered for this key, in the order first seen. */
  ids: string[];
  /**
   * The first id's outcome: classified or failed (with its error codes), still open at the
   * deadline, not found (404) although accepted, or never accepted (retries ran out of time;
   * `rejected` when the gateway refused it with a 4xx other than 429).
   */
  outcome: 'classified' | 'failed' | 'open' | 'not-found' | 'not-accepted' | 'rejected';
  errorCodes: string[];
  /** The last HTTP status of a refused submission. */
  rejectedStatus?: number;
  /** Results recorded for the first id (classification_results by `request`), null when not counted. */
  results: number | null;
  /** The sample's kind, and the label it was classified as. */
  expectedLabel?: string;
  label?: string;
  /** Submission attempts (1 = accepted at the first try). */
  attempts: number;
}

export interface Tally {
  requests: number;
  accepted: number;
  /** Submission attempts beyond the first (connection errors, 429, 5xx). */
  retries: number;
  classified: number;
  /** Classified with a label other than the sample's kind (the demo model should not do that). */
  wrongLabel: number;
  failed: number;
  failedByCode: Record<string, number>;
  infrastructureFailures: number;
  pending: number;
  lost: number;
  /** Requests recorded more than once plus keys answered with more than one id. */
  duplicated: number;
  recordedMoreThanOnce: number;
  keysWithSeveralIds: number;
  notAccepted: number;
  rejected: number;
  rejectedByStatus: Record<string, number>;
  /** Whether results were counted in the database (false: `duplicated` covers the keys only). */
  resultsCounted: boolean;
}

export function tally(submissions: readonly Submission[]): Tally {
  const t: Tally = {
    requests: submissions.length,
    accepted: 0,
    retries: 0,
    classified: 0,
    wrongLabel: 0,
    failed: 0,
    failedByCode: {},
    infrastructureFailures: 0,
    pending: 0,
    lost: 0,
    duplicated: 0,
    recordedMoreThanOnce: 0,
    keysWithSeveralIds: 0,
    notAccepted: 0,
    rejected: 0,
    rejectedByStatus: {},
    resultsCounted: submissions.length > 0,
  };
  for (const s of submissions) {
    t.retries += Math.max(0, s.attempts - 1);
    if (s.ids.length > 0) t.accepted += 1;
    if (s.ids.length > 1) t.keysWithSeveralIds += 1;
    if (s.results === null) {
      if (s.ids.length > 0) t.resultsCounted = false;
    } else if (s.results > 1) {
      t.recordedMoreThanOnce += 1;
    }
    switch (s.outcome) {
      case 'classified':
        t.classified += 1;
        if (s.expectedLabel !== undefined && s.label !== s.expectedLabel) t.wrongLabel += 1;
        break;
      case 'failed': {
        t.failed += 1;
        const codes = s.errorCodes.length > 0 ? s.errorCodes : ['(no code)'];
        for (const code of codes) t.failedByCode[code] = (t.failedByCode[code] ?? 0) + 1;
        // A request failed for the infrastructure when any of its reasons is not the input's own.
        if (!codes.every(isInputFailure)) t.infrastructureFailures += 1;
        break;
      }
      case 'open':
        t.pending += 1;
        break;
      case 'not-found':
        t.lost += 1;
        break;
      case 'not-accepted':
        t.notAccepted += 1;
        break;
      case 'rejected': {
        t.rejected += 1;
        const status = String(s.rejectedStatus ?? '?');
        t.rejectedByStatus[status] = (t.rejectedByStatus[status] ?? 0) + 1;
        break;
      }
    }
  }
  t.duplicated = t.recordedMoreThanOnce + t.keysWithSeveralIds;
  return t;
}

/** What happened around one injected fault. Times are milliseconds after the run started. */
export interface FaultRecord {
  fault: Fault;
  atMs: number;
  /** What was done ("SIGKILL gateway child 1234", "rabbitmq stopped (SIGTERM) …"). */
  action: string;
  /** Why the fault could not be carried out (nothing to kill, a server that did not stop or start); null when it was. */
  error: string | null;
  /** Workload requests being submitted or waited for when the fault hit. */
  inFlightAtFault: number;
  /** Accepted requests not yet ended when the fault hit (of those in flight, and any a client moved on from). */
  openAtFault: number;
  /** Workload requests first submitted between the fault and its end-to-end recovery. */
  submittedDuringRecovery: number;
  /** For a server restart: when its start command returned, after the fault. */
  serverBackMs: number | null;
  /** The killed service's /health (every service's after a server restart) answered 200, after the fault; null: never. */
  healthMs: number | null;
  /**
   * A probe classification submitted right after the fault (once the server is down, for a
   * restart) ended classified, after the fault; null: never.
   */
  endToEndMs: number | null;
  /** The probe's end: classified, failed CODE, open, not accepted … */
  probe: string;
  /**
   * For a server restart, what the services said while it was down (polled every 250 ms): those
   * whose /live ever failed, those whose /ready answered other than 200 at least once, and how
   * many times a supervisor restarted a service meanwhile. Null for a kill.
   */
  whileDown: { liveFailed: string[]; notReady: string[]; restarts: number } | null;
}

/** Counters of the results service, added up over its restarts. */
export interface ResultsCounters {
  recorded: number;
  duplicates: number;
  refused: Record<string, number>;
}

export interface ResultsSample {
  recorded: number;
  duplicates: number;
  started: number;
  refused: Record<string, number>;
}

export interface ResultsAccumulator {
  /** The first sample: what the service had counted before the run. */
  first: ResultsSample | null;
  /** Totals of the processes that have ended. */
  base: ResultsCounters;
  /** The current process's last sample. */
  last: ResultsSample | null;
  restartsSeen: number;
}

export function newResultsAccumulator(): ResultsAccumulator {
  return { first: null, base: { recorded: 0, duplicates: 0, refused: {} }, last: null, restartsSeen: 0 };
}

/**
 * Folds one /stats sample of the results service in. Its counters start again from zero when the
 * process restarts; a sample with any counter lower than the last one is a new process, and the
 * last one's counts are kept. (What the old process counted after its last sample is not seen.)
 */
export function accumulateResults(acc: ResultsAccumulator, sample: ResultsSample): ResultsAccumulator {
  const last = acc.last;
  const first = acc.first ?? sample;
  const restarted =
    last !== null &&
    (sample.recorded < last.recorded ||
      sample.duplicates < last.duplicates ||
      sample.started < last.started ||
      Object.entries(last.refused).some(([k, v]) => (sample.refused[k] ?? 0) < v));
  if (!restarted) return { ...acc, first, last: sample };
  return { first, base: addCounters(acc.base, last, 1), last: sample, restartsSeen: acc.restartsSeen + 1 };
}

function addCounters(a: ResultsCounters, b: ResultsCounters, sign: 1 | -1): ResultsCounters {
  const refused = { ...a.refused };
  for (const [k, v] of Object.entries(b.refused)) refused[k] = (refused[k] ?? 0) + sign * v;
  return { recorded: a.recorded + sign * b.recorded, duplicates: a.duplicates + sign * b.duplicates, refused };
}

/** What the results service counted from the first sample on, over all its processes. */
export function resultsDuringRun(acc: ResultsAccumulator): ResultsCounters {
  const total = acc.last ? addCounters(acc.base, acc.last, 1) : acc.base;
  return acc.first ? addCounters(total, acc.first, -1) : total;
}

export interface Verdict {
  ok: boolean;
  problems: string[];
}

/**
 * Passes only when every accepted request ended, none was lost, none was recorded twice or
 * answered with two ids, none failed for an infrastructure reason, every submission was
 * accepted, and every fault was injected and recovered from.
 */
export function verdict(t: Tally, faults: readonly FaultRecord[]): Verdict {
  const problems: string[] = [];
  if (t.lost > 0) problems.push(`${t.lost} lost`);
  if (t.duplicated > 0) problems.push(`${t.duplicated} duplicated`);
  if (!t.resultsCounted) problems.push('results not counted in the database (duplicates unknown)');
  if (t.pending > 0) problems.push(`${t.pending} pending at the deadline`);
  if (t.infrastructureFailures > 0) problems.push(`${t.infrastructureFailures} failed for an infrastructure reason`);
  if (t.notAccepted > 0) problems.push(`${t.notAccepted} never accepted before the deadline`);
  if (t.rejected > 0) problems.push(`${t.rejected} refused by the gateway`);
  const notInjected = faults.filter((f) => f.error !== null);
  if (notInjected.length > 0) problems.push(`${notInjected.length} fault(s) could not be carried out`);
  const notRecovered = faults.filter((f) => f.error === null && f.endToEndMs === null);
  if (notRecovered.length > 0) problems.push(`${notRecovered.length} fault(s) not recovered from`);
  return { ok: problems.length === 0, problems };
}

function seconds1(ms: number | null): string {
  return ms === null ? 'never' : `${(ms / 1000).toFixed(1)} s`;
}

function byCount(counts: Record<string, number>): string {
  return Object.entries(counts)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}

export function formatReport(
  t: Tally,
  faults: readonly FaultRecord[],
  results: (ResultsCounters & { restartsSeen: number }) | null,
  v: Verdict,
): string {
  const lines: string[] = [];
  const row = (name: string, value: string) => lines.push(`${name.padEnd(14)}${value}`);
  row('requests', String(t.requests));
  row('accepted', `${t.accepted} (${t.retries} submission retries after connection errors, 429 or 5xx)`);
  if (t.notAccepted > 0) row('not accepted', `${t.notAccepted} (retried until the deadline)`);
  if (t.rejected > 0) row('refused', `${t.rejected} (${byCount(t.rejectedByStatus)})`);
  row(
    'classified',
    `${t.classified}${t.wrongLabel > 0 ? ` (${t.wrongLabel} with another label than the sample's)` : ''}`,
  );
  const infra = t.infrastructureFailures;
  row(
    'failed',
    t.failed === 0 ? '0' : `${t.failed}: ${byCount(t.failedByCode)} (${infra} for an infrastructure reason)`,
  );
  row('pending', `${t.pending}${t.pending > 0 ? ' (not ended by the deadline)' : ''}`);
  row('lost', `${t.lost}${t.lost > 0 ? ' (accepted, then not found)' : ''}`);
  row(
    'duplicated',
    t.resultsCounted
      ? `${t.duplicated} (recorded more than once: ${t.recordedMoreThanOnce}; keys answered with two ids: ${t.keysWithSeveralIds})`
      : `${t.duplicated} keys answered with two ids; results NOT counted in the database`,
  );
  if (results) {
    const refused = Object.values(results.refused).reduce((a, b) => a + b, 0);
    row(
      'results svc',
      `recorded ${results.recorded}, duplicates ignored ${results.duplicates}, refused ${refused}` +
        (refused > 0 ? ` (${byCount(results.refused)})` : '') +
        ` — sampled each second over ${results.restartsSeen + 1} process(es)`,
    );
  } else {
    row('results svc', '/stats never answered');
  }
  lines.push('');
  lines.push('recovery per fault, from the fault on:');
  lines.push(
    '  end to end = a probe classification submitted right after the fault (once the server is down) ends classified;',
  );
  lines.push('  health     = the killed service answers /health 200 (every replica for kill-inference;');
  lines.push('               every service for a server restart, once the server is back)');
  for (const f of faults) {
    const at = `+${(f.atMs / 1000).toFixed(1)} s`.padStart(9);
    if (f.error !== null) {
      lines.push(`  ${f.fault.padEnd(17)}${at}  FAILED: ${f.error}`);
      continue;
    }
    const back =
      f.serverBackMs === null
        ? ''
        : `; server back after ${seconds1(f.serverBackMs)}` +
          (f.endToEndMs === null || f.endToEndMs < f.serverBackMs
            ? ''
            : `, end to end ${seconds1(f.endToEndMs - f.serverBackMs)} after that`);
    lines.push(
      `  ${f.fault.padEnd(17)}${at}  end to end ${seconds1(f.endToEndMs).padStart(7)}  health ${seconds1(f.healthMs).padStart(7)}` +
        `  (${f.inFlightAtFault} in flight at the fault, ${f.openAtFault} accepted; ` +
        `${f.submittedDuringRecovery} submitted until recovered; probe ${f.probe}${back})`,
    );
    lines.push(`  ${''.padEnd(17)}${''.padStart(9)}  ${f.action}`);
  }
  if (faults.length === 0) lines.push('  (no faults)');
  lines.push('');
  lines.push(v.ok ? 'verdict: PASS' : `verdict: FAIL — ${v.problems.join('; ')}`);
  return lines.join('\n');
}
