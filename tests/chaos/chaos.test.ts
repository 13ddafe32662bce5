// A small chaos schedule on the test stack: the whole system as `./cxr up` runs it (each service
// under its supervisor, two inference replicas) on private ports, then `npm run chaos` with every
// kind of fault: each service SIGKILLed, RabbitMQ, the database and S3 restarted. Nothing may be
// lost, recorded twice, left open or failed for an infrastructure reason.
//
// It restarts the stack's servers, so it runs alone, after the other projects: infra/test.sh
// runs jest a second time with --selectProjects chaos and CXR_CHAOS_ALONE=1. Without that
// variable (a plain `jest` running every project at once) it is skipped.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FaultRecord, Tally, Verdict } from '../../infra/tools/chaos-policy';
import { portFree } from '../support/ports';

const ROOT = resolve(__dirname, '..', '..');
const STATE = resolve(process.env.CXR_STATE_DIR ?? join(ROOT, '.state', process.env.CXR_STACK ?? 'test'));
// Ports of the services (the servers' come from the test stack's environment). CXR_CHAOS_* move
// them when something else holds these.
const GATEWAY_PORT = Number(process.env.CXR_CHAOS_GATEWAY_PORT ?? 18080);
const RESULTS_PORT = Number(process.env.CXR_CHAOS_RESULTS_HEALTH_PORT ?? 18082);
const INFERENCE_BASE = Number(process.env.CXR_CHAOS_INFERENCE_HEALTH_BASE ?? 18100);
const REPLICAS = 2;
const FAULTS = ['kill-inference', 'kill-results', 'kill-gateway', 'restart-rabbitmq', 'restart-database', 'restart-s3'];

const env: NodeJS.ProcessEnv = {
  ...process.env,
  CXR_STACK: process.env.CXR_STACK ?? 'test',
  CXR_GATEWAY_PORT: String(GATEWAY_PORT),
  CXR_RESULTS_HEALTH_PORT: String(RESULTS_PORT),
  CXR_INFERENCE_HEALTH_BASE: String(INFERENCE_BASE),
  CXR_INFERENCE_REPLICAS: String(REPLICAS),
};

function run(command: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', fail);
    child.once('exit', (code) => done({ code, output }));
  });
}

/** The last lines of every service's log and its supervisor's state: what to read when the run fails. */
function serviceLogs(): string {
  const dir = join(STATE, 'services');
  const out: string[] = [];
  let files: string[] = [];
  try {
    files = readdirSync(dir);
  } catch {
    return `(no ${dir})`;
  }
  for (const file of files.filter((f) => f.endsWith('.state') || f.endsWith('.log')).sort()) {
    const lines = readFileSync(join(dir, file), 'utf8').trimEnd().split('\n');
    out.push(`--- ${file} (last 15 lines) ---`, ...lines.slice(-15));
  }
  return out.join('\n');
}

interface Report {
  tally: Tally;
  faults: FaultRecord[];
  verdict: Verdict;
}

const alone = process.env.CXR_CHAOS_ALONE === '1';
if (!alone) {
  console.warn('chaos: skipped; it restarts the servers, so it runs alone: ./cxr test --selectProjects chaos');
}

(alone ? describe : describe.skip)('a chaos schedule on the supervised system', () => {
  jest.setTimeout(20 * 60_000);
  let workDir = '';

  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'cxr-chaos-'));
    const ports = [GATEWAY_PORT, RESULTS_PORT, ...Array.from({ length: REPLICAS }, (_, i) => INFERENCE_BASE + i + 1)];
    for (const port of ports) {
      // A foreign service there would answer our health checks; set CXR_CHAOS_*_PORT to move.
      if (!(await portFree(port))) throw new Error(`port ${port} is in use; the chaos test needs it for a service`);
    }
    const up = await run('bash', ['infra/run.sh', 'up']);
    if (up.code !== 0) throw new Error(`infra/run.sh up failed (${up.code}):\n${up.output.slice(-4000)}`);
  });

  afterAll(async () => {
    // Whatever happened: the services stop (the test stack's servers stay for infra/test.sh to stop).
    const stopped = await run('bash', ['infra/run.sh', 'stop-services']);
    if (stopped.code !== 0) console.error(`infra/run.sh stop-services failed:\n${stopped.output}`);
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('loses nothing, records nothing twice, leaves nothing open and fails nothing for the infrastructure', async () => {
    const jsonPath = join(workDir, 'report.json');
    const chaos = await run(process.execPath, [
      '--import',
      'tsx',
      'infra/tools/chaos.ts',
      ...['--requests', '60', '--concurrency', '4', '--faults', FAULTS.join(',')],
      ...['--every', '10', '--outage', '8', '--timeout', '540', '--json', jsonPath],
    ]);
    console.log(chaos.output);
    let report: Report;
    try {
      report = JSON.parse(readFileSync(jsonPath, 'utf8')) as Report;
    } catch {
      throw new Error(`the chaos tool wrote no report (exit ${chaos.code}):\n${chaos.output}\n${serviceLogs()}`);
    }
    if (!report.verdict.ok) console.log(`chaos verdict: ${report.verdict.problems.join('; ')}\n${serviceLogs()}`);

    const { tally } = report;
    expect({
      accepted: tally.accepted,
      lost: tally.lost,
      duplicated: tally.duplicated,
      pending: tally.pending,
      infrastructureFailures: tally.infrastructureFailures,
      failedByCode: tally.failedByCode,
      resultsCounted: tally.resultsCounted,
    }).toEqual({
      accepted: 60,
      lost: 0,
      duplicated: 0,
      pending: 0,
      infrastructureFailures: 0,
      failedByCode: {},
      resultsCounted: true,
    });
    // Every fault was injected, and the system came back from it by itself.
    expect(report.faults.map((f) => ({ fault: f.fault, error: f.error, recovered: f.endToEndMs !== null }))).toEqual(
      FAULTS.map((fault) => ({ fault, error: null, recovered: true })),
    );
    // While a server was down, every service stayed alive (/live) and no supervisor restarted one;
    // with RabbitMQ down, every service said it was not ready (/ready), and was ready again after.
    const restarts = report.faults.filter((f) => f.fault.startsWith('restart-'));
    expect(
      restarts.map((f) => ({ fault: f.fault, liveFailed: f.whileDown?.liveFailed, restarts: f.whileDown?.restarts })),
    ).toEqual(restarts.map((f) => ({ fault: f.fault, liveFailed: [], restarts: 0 })));
    expect(report.faults.find((f) => f.fault === 'restart-rabbitmq')?.whileDown?.notReady).toEqual(
      ['gateway', 'results', ...Array.from({ length: REPLICAS }, (_, i) => `inference-${i + 1}`)].sort(),
    );
    expect(chaos.code).toBe(0);
  });
});
