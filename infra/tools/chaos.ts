// Chaos run against the system `./cxr up` started: N classification requests at a concurrency,
// while faults are injected on a schedule (SIGKILL of a service's child, which its supervisor
// must bring back; a restart of RabbitMQ, the database or S3). At the end it waits for every
// accepted request to end and prints accepted, classified, failed by reason, pending, lost,
// duplicated, the results service's refusals and the recovery time of each fault. Exit code 1
// when anything was lost, duplicated, left pending or failed for an infrastructure reason.
//
//   npm run chaos -- [--requests 200] [--concurrency 8] [--faults all] [--every 15] [--outage 10] [--timeout 600]
//
// The same environment as ./cxr: CXR_STACK, CXR_STATE_DIR, CXR_GATEWAY_PORT,
// CXR_RESULTS_HEALTH_PORT, CXR_INFERENCE_HEALTH_BASE, and the server ports infra/stack.sh reads.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectDatabase, Types } from '@cxr/db';
import { renderSample, type SampleKind } from '@cxr/demo-model';
import {
  accumulateResults,
  formatReport,
  newResultsAccumulator,
  nextFaultAtMs,
  paceGapMs,
  parseOptions,
  resultsDuringRun,
  retryDelayMs,
  shouldRetry,
  tally,
  UsageError,
  USAGE,
  verdict,
  type ChaosOptions,
  type Fault,
  type FaultRecord,
  type ResultsAccumulator,
  type ResultsSample,
  type Submission,
} from './chaos-policy';
import { readEnvFile } from './env-file';

const ROOT = resolve(__dirname, '..', '..');
const STACK = process.env.CXR_STACK ?? 'dev';
const STATE = resolve(process.env.CXR_STATE_DIR ?? join(ROOT, '.state', STACK));
const SERVICES_DIR = join(STATE, 'services');
const RUN_DIR = join(STATE, 'run');
const GATEWAY_URL = `http://127.0.0.1:${process.env.CXR_GATEWAY_PORT ?? '8080'}`;
const RESULTS_PORT = Number(process.env.CXR_RESULTS_HEALTH_PORT ?? '8082');
const INFERENCE_BASE = Number(process.env.CXR_INFERENCE_HEALTH_BASE ?? '8100');
const TERMINAL = new Set(['classified', 'failed']);

const started = performance.now();
const elapsed = () => performance.now() - started;
function say(message: string): void {
  console.log(`[chaos] +${(elapsed() / 1000).toFixed(1).padStart(6)} s  ${message}`);
}

// ---------------------------------------------------------------------------------------------
// HTTP, as a careful client does it: every call has a time limit; no answer is status null.

interface Answer {
  status: number | null;
  body: Record<string, unknown>;
  error?: string;
}

async function call(
  method: string,
  path: string,
  apiKey: string,
  timeoutMs: number,
  body?: FormData,
  headers: Record<string, string> = {},
): Promise<Answer> {
  try {
    const response = await fetch(`${GATEWAY_URL}${path}`, {
      method,
      headers: { authorization: `Bearer ${apiKey}`, ...headers },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      parsed = { text };
    }
    return { status: response.status, body: parsed };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    return { status: null, body: {}, error: cause ?? (error as Error).name };
  }
}

async function healthy(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// The workload: submit with an Idempotency-Key, retry the same key until accepted, wait for the end.

interface Sample {
  kind: SampleKind;
  bytes: Buffer;
}

interface Run {
  options: ChaosOptions;
  apiKey: string;
  datasetId: string;
  deadline: number;
  /** Accepted ids not yet seen ended. */
  open: Set<string>;
  /** Every id the gateway answered for each key. */
  idsByKey: Map<string, Set<string>>;
  /** Faults not yet over (a server restart is over once the server is back). */
  faultsLeft: number;
  /** When each workload submission was first tried. */
  submittedAt: number[];
  /** Right before a fault: clients submit without pacing, so the fault hits requests in flight. */
  surge: boolean;
  /** Workload requests being submitted or waited for by a client. */
  inFlight: number;
}

function imageForm(sample: Sample): FormData {
  const form = new FormData();
  form.append('image', new Blob([sample.bytes]), `${sample.kind}.png`);
  return form;
}

type Accepted = { id: string; attempts: number } | { id: null; attempts: number; rejectedStatus?: number };

/** A careful client's back-off between tries; the recovery probe, a measuring instrument, retries every 250 ms. */
type Delay = (attempt: number) => number;
const carefulClient: Delay = (attempt) => retryDelayMs(attempt, Math.random());
const probeDelay: Delay = () => 250;

/** Submits until the gateway answers 202/200 or refuses with a 4xx other than 429, or the deadline. */
async function submit(run: Run, key: string, sample: Sample, delay: Delay = carefulClient): Promise<Accepted> {
  let attempts = 0;
  while (performance.now() < run.deadline) {
    attempts += 1;
    const answer = await call(
      'POST',
      `/v1/datasets/${run.datasetId}/classifications`,
      run.apiKey,
      30_000,
      imageForm(sample),
      { 'idempotency-key': key },
    );
    if ((answer.status === 202 || answer.status === 200) && typeof answer.body.id === 'string') {
      const id = answer.body.id;
      const ids = run.idsByKey.get(key) ?? new Set<string>();
      if (ids.size > 0 && !ids.has(id))
        say(`DUPLICATE: key ${key} answered with ${id}, earlier with ${[...ids].join(', ')}`);
      ids.add(id);
      run.idsByKey.set(key, ids);
      return { id, attempts };
    }
    if (!shouldRetry(answer.status)) {
      say(`key ${key} refused: ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
      return { id: null, attempts, rejectedStatus: answer.status ?? undefined };
    }
    await sleep(Math.min(delay(attempts), Math.max(0, run.deadline - performance.now())));
  }
  return { id: null, attempts };
}

interface View {
  state: string;
  errors: { code: string; message: string }[];
  result: { label: string } | null;
}

type Polled = { kind: 'ended'; view: View } | { kind: 'open' } | { kind: 'not-found' };

/**
 * Polls a request (?wait) until it ends, `until` passes, or it is not found three times in a
 * row (an accepted request must always be found).
 */
async function awaitEnd(run: Run, id: string, until: number, delay: Delay = carefulClient): Promise<Polled> {
  let notFound = 0;
  let attempt = 0;
  while (performance.now() < until) {
    const wait = Math.max(0, Math.min(20, Math.floor((until - performance.now()) / 1000)));
    const answer = await call('GET', `/v1/classifications/${id}?wait=${wait}`, run.apiKey, (wait + 15) * 1000);
    if (answer.status === 200) {
      notFound = 0;
      attempt = 0;
      const view = answer.body as unknown as View;
      if (TERMINAL.has(view.state)) {
        run.open.delete(id);
        return { kind: 'ended', view };
      }
      continue;
    }
    if (answer.status === 404 && ++notFound >= 3) return { kind: 'not-found' };
    attempt += 1;
    await sleep(Math.min(delay(attempt), Math.max(0, until - performance.now())));
  }
  return { kind: 'open' };
}

function outcomeOf(polled: Polled, submission: Submission): void {
  if (polled.kind === 'ended') {
    submission.outcome = polled.view.state === 'classified' ? 'classified' : 'failed';
    submission.errorCodes = polled.view.errors.map((e) => e.code);
    if (polled.view.result) submission.label = polled.view.result.label;
  } else {
    submission.outcome = polled.kind;
  }
}

/** How long a client waits for one request before moving on to its next (the final sweep waits for the rest). */
const PER_REQUEST_WAIT_MS = 120_000;

async function workload(run: Run, samples: Sample[], runId: string): Promise<Submission[]> {
  const submissions: Submission[] = [];
  let next = 0;
  // Spread over the fault schedule (unless --burst): submissions take turns, each waiting its gap.
  let answered = 0;
  let turn: Promise<void> = Promise.resolve();
  let lastRelease = -Infinity;
  const paced = () =>
    (turn = turn.then(async () => {
      if (run.options.burst) return;
      const gap = () => paceGapMs(run.options.requests - next, run.faultsLeft, run.options.everySeconds);
      while (!run.surge && performance.now() < Math.min(run.deadline, lastRelease + gap())) await sleep(20);
      lastRelease = performance.now();
    }));
  const client = async () => {
    while (next < run.options.requests && performance.now() < run.deadline) {
      await paced();
      if (next >= run.options.requests) break;
      const i = next++;
      const sample = samples[i % samples.length]!;
      const submission: Submission = {
        key: `chaos-${runId}-${i}`,
        ids: [],
        outcome: 'not-accepted',
        errorCodes: [],
        results: null,
        expectedLabel: sample.kind,
        attempts: 0,
      };
      submissions.push(submission);
      run.submittedAt.push(performance.now());
      run.inFlight += 1;
      try {
        const accepted = await submit(run, submission.key, sample);
        submission.attempts = accepted.attempts;
        if (++answered === run.options.requests) say(`all ${answered} requests submitted and answered`);
        if (accepted.id === null) {
          if (accepted.rejectedStatus !== undefined) {
            submission.outcome = 'rejected';
            submission.rejectedStatus = accepted.rejectedStatus;
          }
          continue;
        }
        submission.ids = [accepted.id];
        submission.outcome = 'open';
        run.open.add(accepted.id);
        outcomeOf(
          await awaitEnd(run, accepted.id, Math.min(run.deadline, performance.now() + PER_REQUEST_WAIT_MS)),
          submission,
        );
      } finally {
        run.inFlight -= 1;
      }
    }
  };
  await Promise.all(Array.from({ length: run.options.concurrency }, client));
  // Never started because the deadline came first: not accepted.
  for (let i = next; i < run.options.requests; i++) {
    submissions.push({
      key: `chaos-${runId}-${i}`,
      ids: [],
      outcome: 'not-accepted',
      errorCodes: [],
      results: null,
      attempts: 0,
    });
  }
  return submissions;
}

/** Waits (bounded by the deadline) for every accepted request a client moved on from. */
async function awaitTheRest(run: Run, submissions: Submission[]): Promise<void> {
  const left = submissions.filter((s) => s.outcome === 'open');
  if (left.length === 0) return;
  say(`waiting for ${left.length} accepted request(s) still open`);
  let next = 0;
  const poller = async () => {
    while (next < left.length) {
      const s = left[next++]!;
      outcomeOf(await awaitEnd(run, s.ids[0]!, run.deadline), s);
    }
  };
  await Promise.all(Array.from({ length: Math.max(4, run.options.concurrency) }, poller));
}

/** Submits every accepted key once more: the gateway must answer the id it gave the first time. */
async function replayKeys(run: Run, submissions: Submission[], samples: Sample[]): Promise<void> {
  const accepted = submissions
    .map((s, i) => ({ s, sample: samples[i % samples.length]! }))
    .filter((x) => x.s.ids.length);
  const until = performance.now() + 120_000;
  const replayRun = { ...run, deadline: until };
  let next = 0;
  let unanswered = 0;
  const replayer = async () => {
    while (next < accepted.length) {
      const { s, sample } = accepted[next++]!;
      const again = await submit(replayRun, s.key, sample);
      if (again.id === null) unanswered += 1;
    }
  };
  await Promise.all(Array.from({ length: run.options.concurrency }, replayer));
  for (const s of submissions) if (s.ids.length) s.ids = [...(run.idsByKey.get(s.key) ?? s.ids)];
  say(`replayed ${accepted.length} accepted keys${unanswered ? ` (${unanswered} got no answer)` : ''}`);
}

/** Counts classification_results by `request` for every accepted id; leaves `results` null when it cannot. */
async function countResults(submissions: Submission[]): Promise<void> {
  const env = readEnvFile(join(STATE, 'stack.env'));
  const ids = submissions.flatMap((s) => s.ids);
  if (ids.length === 0) return;
  let db: Awaited<ReturnType<typeof connectDatabase>> | undefined;
  try {
    db = await connectDatabase(env.MONGODB_URI!, 'cxr');
    const counts = new Map<string, number>();
    for (let i = 0; i < ids.length; i += 500) {
      const batch = ids.slice(i, i + 500).map((id) => new Types.ObjectId(id));
      const rows = await db.models.ClassificationResult.collection
        .aggregate<{ _id: Types.ObjectId; n: number }>([
          { $match: { request: { $in: batch } } },
          { $group: { _id: '$request', n: { $sum: 1 } } },
        ])
        .toArray();
      for (const row of rows) counts.set(String(row._id), row.n);
    }
    for (const s of submissions) {
      if (s.ids.length > 0) s.results = counts.get(s.ids[0]!) ?? 0;
    }
  } catch (error) {
    say(`could not count results in the database: ${(error as Error).message}`);
  } finally {
    await db?.close().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// The results service's counters, sampled every second (its counters restart with the process).

function sampleResults(stop: AbortSignal): { done: Promise<ResultsAccumulator> } {
  const done = (async () => {
    let acc = newResultsAccumulator();
    while (!stop.aborted) {
      try {
        const response = await fetch(`http://127.0.0.1:${RESULTS_PORT}/stats`, { signal: AbortSignal.timeout(1_500) });
        if (response.ok) acc = accumulateResults(acc, (await response.json()) as ResultsSample);
      } catch {
        // down or restarting: the next sample tells
      }
      await sleep(1_000).catch(() => undefined);
    }
    return acc;
  })();
  return { done };
}

// ---------------------------------------------------------------------------------------------
// Faults.

/**
 * Whether the process lives, is not a zombie, and carries `marker`: as a whole variable of its
 * environment (`CXR_SLOT=…`, as infra/run.sh checks its slots), or, with `within`, inside any
 * variable or argument (a server's state path).
 */
function ours(pid: number, marker: string, match: 'variable' | 'within'): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false;
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    if (match === 'variable') return environ.includes(marker);
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return [...environ, ...cmdline].some((part) => part.includes(marker));
  } catch {
    return false;
  }
}

function pidFile(path: string): number | null {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim().split('\n')[0]);
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}

/** The live child (or supervisor) of a slot of ours: a pid file whose process carries CXR_SLOT of that slot. */
function slotPid(name: string, which: 'child' | 'supervisor'): number | null {
  const pid = pidFile(join(SERVICES_DIR, `${name}.${which}.pid`));
  return pid !== null && ours(pid, `CXR_SLOT=${join(SERVICES_DIR, name)}`, 'variable') ? pid : null;
}

function inferenceSlots(): string[] {
  try {
    return readdirSync(SERVICES_DIR)
      .map((f) => /^(inference-\d+)\.supervisor\.pid$/.exec(f)?.[1])
      .filter((n): n is string => n !== undefined)
      .sort();
  } catch {
    return [];
  }
}

/** SIGKILLs the slot's child; waits (up to 30 s) for one when its supervisor is between restarts. */
async function killSlot(name: string): Promise<string> {
  const until = performance.now() + 30_000;
  for (;;) {
    if (slotPid(name, 'supervisor') === null)
      throw new Error(`${name} has no live supervisor; nothing would restart it`);
    const child = slotPid(name, 'child');
    if (child !== null) {
      process.kill(child, 'SIGKILL');
      return `SIGKILL ${name} child ${child}`;
    }
    if (performance.now() > until) throw new Error(`${name} has had no child for 30 s (its supervisor is backing off)`);
    await sleep(200);
  }
}

interface ServerSpec {
  /** Names for `infra/stack.sh stop|start NAME`, in start order. */
  names: string[];
  /** Pid files under $STATE/run of the processes to signal (process group leaders first). */
  pidFiles: string[];
}

function serverSpec(fault: Fault): ServerSpec {
  switch (fault) {
    case 'restart-rabbitmq':
      return { names: ['rabbitmq'], pidFiles: ['rabbitmq-wrapper.pid', 'rabbitmq.pid'] };
    case 'restart-database':
      // FerretDB, and the PostgreSQL under it when this stack runs one.
      return existsSync(join(RUN_DIR, 'postgres.pid'))
        ? { names: ['postgres', 'ferretdb'], pidFiles: ['ferretdb.pid', 'postgres.pid'] }
        : { names: ['ferretdb'], pidFiles: ['ferretdb.pid'] };
    case 'restart-s3':
      return { names: ['s3'], pidFiles: ['s3.pid'] };
    default:
      throw new Error(`${fault} is not a server restart`);
  }
}

/** infra/stack.sh has `stop NAME` / `start NAME` (one server at a time) in this tree. */
function stackHasStartStop(): boolean {
  const text = readFileSync(join(ROOT, 'infra', 'stack.sh'), 'utf8');
  return /^\s*start\s*\|\s*stop\)/m.test(text) || /^\s*stop\s*\|\s*start\)/m.test(text);
}

/** Runs infra/stack.sh with our environment, its output appended to $STATE/logs/chaos-stack.log. */
async function stack(...args: string[]): Promise<void> {
  const logPath = join(STATE, 'logs', 'chaos-stack.log');
  const fd = openSync(logPath, 'a');
  try {
    writeFileSync(fd, `=== ${new Date().toISOString()} infra/stack.sh ${args.join(' ')}\n`);
    const code = await new Promise<number | null>((resolveExit, reject) => {
      const child = spawn('bash', [join(ROOT, 'infra', 'stack.sh'), ...args], {
        cwd: ROOT,
        stdio: ['ignore', fd, fd],
      });
      child.once('error', reject);
      child.once('exit', (c) => resolveExit(c));
    });
    if (code !== 0) throw new Error(`infra/stack.sh ${args.join(' ')} exited ${code}; see ${logPath}`);
  } finally {
    closeSync(fd);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

async function waitGone(pids: number[], ms: number): Promise<boolean> {
  const until = performance.now() + ms;
  while (pids.some(alive)) {
    if (performance.now() > until) return false;
    await sleep(100);
  }
  return true;
}

/** Stops a server by its pid files, as infra/stack.sh does: its process group, SIGTERM (or SIGKILL), then SIGKILL. */
async function stopByPidFiles(spec: ServerSpec, hard: boolean): Promise<string> {
  const pids: number[] = [];
  for (const file of spec.pidFiles) {
    const pid = pidFile(join(RUN_DIR, file));
    // The process must belong to this stack: its command line or environment names our state folder.
    if (pid !== null && alive(pid) && ours(pid, `${STATE}/`, 'within')) pids.push(pid);
  }
  if (pids.length === 0)
    throw new Error(`no live process of this stack in ${spec.pidFiles.join(', ')} under ${RUN_DIR}`);
  const signal = hard ? 'SIGKILL' : 'SIGTERM';
  const signalGroup = (pid: number, sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig); // started with setsid: the pid is its group's id
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        // already gone
      }
    }
  };
  for (const pid of pids) signalGroup(pid, signal);
  if (!(await waitGone(pids, 30_000))) {
    for (const pid of pids) signalGroup(pid, 'SIGKILL');
    await waitGone(pids, 5_000);
    return `${spec.names.join('+')} (pids ${pids.join(', ')}) ignored ${signal} for 30 s; SIGKILL`;
  }
  return `${signal} to ${spec.names.join('+')} (process groups ${pids.join(', ')})`;
}

/** A server this tool stopped and has not started again yet. */
let serverDown: { fault: Fault; startAgain: () => Promise<void> } | null = null;

/**
 * Stops the server(s), calls `down` once they are (the recovery probe goes in then), keeps them
 * down `outage` seconds, starts them again and resolves `back` when they are.
 */
async function restartServer(
  fault: Fault,
  options: ChaosOptions,
  faultAt: number,
  down: () => void,
  back: (ms: number | null) => void,
) {
  const spec = serverSpec(fault);
  const useStack = !options.hard && stackHasStartStop();
  let action: string;
  try {
    if (useStack) {
      for (const name of [...spec.names].reverse()) await stack('stop', name);
      action = `infra/stack.sh stop ${[...spec.names].reverse().join(', ')}`;
    } else {
      action = await stopByPidFiles(spec, options.hard);
    }
  } catch (error) {
    back(null);
    throw error;
  }
  action += ` (down ${((performance.now() - faultAt) / 1000).toFixed(1)} s after the fault)`;
  say(`${fault}: ${action}; kept down for ${options.outageSeconds} s`);
  down();
  const startAgain = async () => {
    if (useStack) for (const name of spec.names) await stack('start', name);
    else await stack('up');
  };
  // Interrupted while the server is down: it is started again before the tool exits.
  serverDown = { fault, startAgain };
  await sleep(options.outageSeconds * 1000);
  try {
    await startAgain();
    serverDown = null;
  } catch (error) {
    serverDown = null;
    back(null);
    throw new Error(`${action}, but starting it again failed: ${(error as Error).message}`);
  }
  const backMs = performance.now() - faultAt;
  back(backMs);
  const how = useStack ? `infra/stack.sh start ${spec.names.join(', ')}` : 'infra/stack.sh up';
  say(`${fault}: started again (${how}) ${(backMs / 1000).toFixed(1)} s after the fault`);
  return `${action}; ${options.outageSeconds} s down; ${how}`;
}

/** The /health URLs of the services a fault hits: the killed service's, or every service's for a server restart. */
function healthUrls(fault: Fault | 'all'): string[] {
  const gateway = `${GATEWAY_URL}/health`;
  const results = `http://127.0.0.1:${RESULTS_PORT}/health`;
  const inference = inferenceSlots().map((n) => `http://127.0.0.1:${INFERENCE_BASE + Number(n.split('-')[1])}/health`);
  if (fault === 'kill-gateway') return [gateway];
  if (fault === 'kill-results') return [results];
  if (fault === 'kill-inference') return inference;
  return [gateway, results, ...inference];
}

interface ProbeWatch {
  liveFailed: string[];
  notReady: string[];
}

/** Polls every service's /live and /ready every 250 ms until `over()`: who was ever not alive, who was ever not ready. */
async function watchProbes(over: () => boolean): Promise<ProbeWatch> {
  const liveFailed = new Set<string>();
  const notReady = new Set<string>();
  const answers = async (url: string) => {
    try {
      return (await fetch(url, { signal: AbortSignal.timeout(2_000) })).status;
    } catch {
      return null;
    }
  };
  while (!over()) {
    await Promise.all(
      healthUrls('all').map(async (health) => {
        const name = serviceName(health);
        if ((await answers(health.replace(/\/health$/, '/live'))) !== 200) liveFailed.add(name);
        if ((await answers(health.replace(/\/health$/, '/ready'))) !== 200) notReady.add(name);
      }),
    );
    await sleep(250);
  }
  return { liveFailed: [...liveFailed].sort(), notReady: [...notReady].sort() };
}

/** gateway, results or inference-N, from one of healthUrls' URLs. */
function serviceName(healthUrl: string): string {
  const port = Number(new URL(healthUrl).port);
  if (healthUrl.startsWith(GATEWAY_URL)) return 'gateway';
  if (port === RESULTS_PORT) return 'results';
  return `inference-${port - INFERENCE_BASE}`;
}

/** How many times the supervisors have restarted their services so far (their state files' restarts=). */
function supervisorRestarts(): number {
  let total = 0;
  for (const file of readdirSync(SERVICES_DIR).filter((f) => f.endsWith('.state'))) {
    const restarts = /^restarts=(\d+)$/m.exec(readFileSync(join(SERVICES_DIR, file), 'utf8'))?.[1];
    total += Number(restarts ?? 0);
  }
  return total;
}

/** Every one of these /health URLs answers 200 at once. */
async function allHealthy(urls: string[] = healthUrls('all')): Promise<boolean> {
  return (await Promise.all(urls.map(healthy))).every(Boolean);
}

/** Health and end-to-end recovery after a fault at `faultAt`, the probe submitted at once. */
async function measureRecovery(
  run: Run,
  record: FaultRecord,
  faultAt: number,
  serverBack: Promise<number | null>,
  probeSample: Sample,
  probeKey: string,
): Promise<void> {
  const health = (async () => {
    const back = await serverBack;
    if (back === null && record.fault.startsWith('restart-')) return;
    while (performance.now() < run.deadline) {
      if (await allHealthy(healthUrls(record.fault))) {
        record.healthMs = performance.now() - faultAt;
        return;
      }
      await sleep(250);
    }
  })();
  const probe = (async () => {
    const accepted = await submit(run, probeKey, probeSample, probeDelay);
    if (accepted.id === null) {
      record.probe = accepted.rejectedStatus ? `refused ${accepted.rejectedStatus}` : 'not accepted';
      return;
    }
    const polled = await awaitEnd(run, accepted.id, run.deadline, probeDelay);
    if (polled.kind === 'ended' && polled.view.state === 'classified') {
      record.endToEndMs = performance.now() - faultAt;
      record.probe = 'classified';
    } else if (polled.kind === 'ended') {
      record.probe = `failed ${polled.view.errors.map((e) => e.code).join(',')}`;
    } else {
      record.probe = polled.kind;
    }
  })();
  await Promise.all([health, probe]);
  record.serverBackMs = await serverBack;
  const recoveredAt = faultAt + (record.endToEndMs ?? Infinity);
  record.submittedDuringRecovery = run.submittedAt.filter((t) => t >= faultAt && t <= recoveredAt).length;
  say(
    `${record.fault}: recovered — end to end ${record.endToEndMs === null ? 'never' : `${(record.endToEndMs / 1000).toFixed(1)} s`}, ` +
      `health ${record.healthMs === null ? 'never' : `${(record.healthMs / 1000).toFixed(1)} s`} (probe ${record.probe})`,
  );
}

/**
 * Waits until `atMs` after the start, then lifts the clients' pacing until every client has a
 * request in flight (or every request left is) and, for a fault behind the gateway, one of them
 * is accepted, at most 3 s, so that the fault hits requests under way; the pacing resumes when
 * the fault goes in.
 */
async function surgeThenWait(run: Run, atMs: number, fault: Fault): Promise<void> {
  const until = (ms: number) => Math.min(ms, run.deadline - started);
  const wait = until(atMs) - elapsed();
  if (wait > 0) await sleep(wait);
  run.surge = true;
  const left = () => run.options.requests - run.submittedAt.length;
  const enough = () =>
    run.inFlight >= Math.min(run.options.concurrency, run.inFlight + left()) &&
    (fault === 'kill-gateway' || run.open.size > 0 || run.inFlight + left() === 0);
  const latest = until(atMs + 3_000);
  while (!enough() && elapsed() < latest) await sleep(10);
  run.surge = false;
}

async function injectFaults(run: Run, probeSample: Sample, runId: string): Promise<FaultRecord[]> {
  const records: FaultRecord[] = [];
  const recoveries: Promise<void>[] = [];
  for (const [i, fault] of run.options.faults.entries()) {
    const previous = records[records.length - 1];
    if (!run.options.overlap) await Promise.all(recoveries);
    const atMs = nextFaultAtMs(
      previous
        ? {
            atMs: previous.atMs,
            recoveredAtMs: previous.endToEndMs === null ? null : previous.atMs + previous.endToEndMs,
          }
        : null,
      run.options.everySeconds,
      run.options.overlap,
    );
    await surgeThenWait(run, atMs, fault);
    const faultAt = performance.now();
    const record: FaultRecord = {
      fault,
      atMs: elapsed(),
      action: '',
      error: null,
      inFlightAtFault: run.inFlight,
      openAtFault: run.open.size,
      submittedDuringRecovery: 0,
      serverBackMs: null,
      healthMs: null,
      endToEndMs: null,
      probe: '-',
      whileDown: null,
    };
    records.push(record);
    if (faultAt > run.deadline) {
      record.error = 'the run reached its deadline first';
      run.faultsLeft -= 1;
      continue;
    }
    let back: (ms: number | null) => void = () => undefined;
    const serverBack = new Promise<number | null>((r) => (back = r));
    const recover = () =>
      measureRecovery(run, record, faultAt, serverBack, probeSample, `chaos-${runId}-probe-${i}`).catch(
        (e: unknown) => {
          record.probe = `error ${(e as Error).message}`;
        },
      );
    try {
      if (fault === 'kill-inference') {
        const slots = inferenceSlots();
        if (slots.length === 0) throw new Error(`no inference replica in ${SERVICES_DIR}`);
        record.action = (await Promise.all(slots.map(killSlot))).join('; ');
        say(`${fault}: ${record.action}`);
        back(null);
        recoveries.push(recover());
      } else if (fault === 'kill-gateway' || fault === 'kill-results') {
        record.action = await killSlot(fault.slice('kill-'.length));
        say(`${fault}: ${record.action}`);
        back(null);
        recoveries.push(recover());
      } else {
        // The probe goes in once the server is down, and the next fault waits for it to be back.
        // Meanwhile the services' probes are watched: alive, not ready, and not restarted.
        const restartsBefore = supervisorRestarts();
        const watch: { probes: Promise<ProbeWatch> | null } = { probes: null };
        let serverIsBack = false;
        const down = () => {
          recoveries.push(recover());
          watch.probes = watchProbes(() => serverIsBack);
        };
        try {
          record.action = await restartServer(fault, run.options, faultAt, down, back);
        } finally {
          serverIsBack = true;
        }
        if (watch.probes)
          record.whileDown = { ...(await watch.probes), restarts: supervisorRestarts() - restartsBefore };
        say(`${fault}: while down: ${JSON.stringify(record.whileDown)}`);
      }
    } catch (error) {
      record.error = (error as Error).message;
      say(`${fault}: FAILED: ${record.error}`);
      back(null);
    }
    run.faultsLeft -= 1;
  }
  await Promise.all(recoveries);
  return records;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  let options: ChaosOptions;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`[chaos] ${error.message}\n${USAGE}`);
      return 2;
    }
    throw error;
  }
  const demoPath = join(STATE, 'demo.json');
  if (!existsSync(demoPath)) throw new Error(`${demoPath} does not exist: start the system with ./cxr up first`);
  const { apiKey, datasetId } = JSON.parse(readFileSync(demoPath, 'utf8')) as { apiKey: string; datasetId: string };
  if (!(await allHealthy())) {
    throw new Error(
      `not every service answers /health at ${GATEWAY_URL} and its peers: is the system up (./cxr status)?`,
    );
  }
  const kinds: SampleKind[] = ['dark', 'bright', 'striped'];
  const samples: Sample[] = [];
  for (let seed = 0; seed < 4; seed++) {
    for (const kind of kinds) {
      samples.push({ kind, bytes: await renderSample(kind, { width: 256, height: 256, seed: 500 + seed }) });
    }
  }
  const probeSample: Sample = {
    kind: 'bright',
    bytes: await renderSample('bright', { width: 256, height: 256, seed: 999 }),
  };
  const runId = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const run: Run = {
    options,
    apiKey,
    datasetId,
    deadline: performance.now() + options.timeoutSeconds * 1000,
    open: new Set(),
    idsByKey: new Map(),
    faultsLeft: options.faults.length,
    submittedAt: [],
    surge: false,
    inFlight: 0,
  };
  say(
    `run ${runId}: ${options.requests} requests, concurrency ${options.concurrency}, ` +
      `faults ${options.faults.join(', ') || 'none'} every ${options.everySeconds} s (outage ${options.outageSeconds} s), ` +
      `timeout ${options.timeoutSeconds} s; gateway ${GATEWAY_URL}, state ${STATE}`,
  );

  const stopSampling = new AbortController();
  const sampler = sampleResults(stopSampling.signal);
  const [submissions, faults] = await Promise.all([
    workload(run, samples, runId).then(async (s) => {
      say(`the clients are done (${run.open.size} accepted request(s) still open)`);
      return s;
    }),
    injectFaults(run, probeSample, runId),
  ]);
  await awaitTheRest(run, submissions);
  await replayKeys(run, submissions, samples);
  await countResults(submissions);
  await sleep(1_500); // one more /stats sample after the last result
  stopSampling.abort();
  const results = await sampler.done;

  const t = tally(submissions);
  const v = verdict(t, faults);
  const totals = results.last === null ? null : { ...resultsDuringRun(results), restartsSeen: results.restartsSeen };
  console.log(`\n== chaos report (run ${runId}, ${(elapsed() / 1000).toFixed(0)} s) ==`);
  console.log(formatReport(t, faults, totals, v));
  const unusual = submissions.filter((s) => s.outcome !== 'classified' || s.ids.length !== 1 || (s.results ?? 1) !== 1);
  for (const s of unusual.slice(0, 20)) {
    console.log(
      `  ${s.key}: ${s.outcome}${s.errorCodes.length ? ` ${s.errorCodes.join(',')}` : ''} ids ${s.ids.join(',') || '-'} results ${s.results ?? '?'}`,
    );
  }
  if (unusual.length > 20) console.log(`  … and ${unusual.length - 20} more`);
  if (options.jsonPath) {
    writeFileSync(
      options.jsonPath,
      JSON.stringify({ runId, options, tally: t, faults, results: totals, verdict: v, unusual }, null, 2),
    );
  }
  return v.ok ? 0 : 1;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    const down = serverDown;
    if (!down) process.exit(130);
    say(`${signal} during ${down.fault}: starting the server again before exiting`);
    down.startAgain().then(
      () => process.exit(130),
      (error: unknown) => {
        console.error(`[chaos] starting it again failed: ${(error as Error).message}; run ./cxr up`);
        process.exit(130);
      },
    );
  });
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`[chaos] ${(error as Error).message}`);
    process.exit(1);
  },
);
