// Keeps one service running: starts it, and whenever it exits for any reason other than this
// supervisor being told to stop, starts it again after a back-off (1 s doubling to 30 s, back to
// 1 s after a run of a minute or more). Each restart is logged, with why and after how long, as
// a JSON line on stdout (the service's log file when infra/run.sh starts it).
//
//   node --import tsx infra/tools/supervise.ts --name inference-1 --dir .state/dev/services \
//        [--stop-grace-seconds 20] -- node --import tsx services/inference/src/server.ts
//
// Files in --dir: NAME.supervisor.pid (this process), NAME.child.pid (the running child, absent
// between runs), NAME.state (status, child pid, restarts so far, last exit: read by ./cxr status).
// SIGTERM, SIGINT or SIGHUP stop it: the child gets SIGTERM, then SIGKILL after the grace period,
// is not restarted, and the supervisor removes its pid files and exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultBackoff, describeExit, formatDuration, nextBackoff, type Backoff } from './supervise-policy';

interface Options {
  name: string;
  dir: string;
  stopGraceMs: number;
  command: string[];
}

function parseArgs(argv: string[]): Options {
  const split = argv.indexOf('--');
  const flags = split < 0 ? argv : argv.slice(0, split);
  const command = split < 0 ? [] : argv.slice(split + 1);
  const values = new Map<string, string>();
  for (let i = 0; i < flags.length; i += 2) {
    const flag = flags[i]!;
    const value = flags[i + 1];
    if (!['--name', '--dir', '--stop-grace-seconds'].includes(flag) || value === undefined) {
      throw new Error(`unexpected argument ${flag}`);
    }
    values.set(flag, value);
  }
  const name = values.get('--name');
  const dir = values.get('--dir');
  const grace = Number(values.get('--stop-grace-seconds') ?? 20);
  if (!name || !/^[a-z0-9-]+$/.test(name)) throw new Error('--name NAME (letters, digits, dashes) is required');
  if (!dir) throw new Error('--dir DIR is required');
  if (!Number.isFinite(grace) || grace < 0) throw new Error('--stop-grace-seconds must be a number ≥ 0');
  if (command.length === 0) throw new Error('the command to supervise goes after --');
  return { name, dir, stopGraceMs: grace * 1_000, command };
}

let options: Options;
try {
  options = parseArgs(process.argv.slice(2));
} catch (error) {
  console.error(
    `supervise: ${(error as Error).message}\nusage: supervise.ts --name NAME --dir DIR [--stop-grace-seconds N] -- COMMAND…`,
  );
  process.exit(2);
}

const { name, dir, stopGraceMs, command } = options;
const supervisorPidFile = join(dir, `${name}.supervisor.pid`);
const childPidFile = join(dir, `${name}.child.pid`);
const stateFile = join(dir, `${name}.state`);

/** A pino-shaped JSON line, so the service's log stays one JSON object per line. */
function log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
  const levels = { info: 30, warn: 40, error: 50 };
  const line = { level: levels[level], time: new Date().toISOString(), service: 'supervisor', pid: process.pid };
  process.stdout.write(`${JSON.stringify({ ...line, slot: name, ...fields, msg })}\n`);
}

function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

let child: ChildProcess | undefined;
let childStartedAt = 0;
let restarts = 0;
let backoff: Backoff | undefined;
let lastExit = '';
let restartTimer: NodeJS.Timeout | undefined;
let stopping = false;
let exitCode = 0;

function writeState(status: 'up' | 'backoff' | 'stopping' | 'stopped', nextRestartAt?: number): void {
  const lines = [
    `status=${status}`,
    `supervisor=${process.pid}`,
    `child=${child?.pid ?? '-'}`,
    `restarts=${restarts}`,
    `last_exit=${lastExit || '-'}`,
    `next_restart=${nextRestartAt === undefined ? '-' : new Date(nextRestartAt).toISOString()}`,
  ];
  writeAtomically(stateFile, `${lines.join('\n')}\n`);
}

function start(): void {
  restartTimer = undefined;
  childStartedAt = Date.now();
  // The child shares this process group, so signalling the group (./cxr down's last resort) reaches both.
  const started = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'inherit', 'inherit'] });
  child = started;
  started.once('exit', (code, signal) => ended(started, code, signal));
  started.once('error', (error) => {
    // Only a failed spawn ends the child here; otherwise 'exit' follows.
    if (started.pid === undefined) {
      log('error', `${name} could not be started: ${error.message}`);
      ended(started, null, null);
    }
  });
  if (started.pid !== undefined) {
    writeAtomically(childPidFile, `${started.pid}\n`);
    log('info', `${name} started (pid ${started.pid})`, { child: started.pid, restarts });
  }
  writeState('up');
}

function ended(which: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
  if (child !== which) return;
  child = undefined;
  rmSync(childPidFile, { force: true });
  const uptimeMs = Date.now() - childStartedAt;
  const why = describeExit(code, signal);
  lastExit = `${why} after ${formatDuration(uptimeMs)}`;
  const fields = { child: which.pid, exit: why, uptimeMs };
  if (stopping) {
    log('info', `${name} stopped (${why}) after ${formatDuration(uptimeMs)} up; not restarting`, fields);
    finish(exitCode);
    return;
  }
  backoff = nextBackoff(uptimeMs, backoff, defaultBackoff);
  restarts += 1;
  log(
    'warn',
    `${name} exited (${why}) after ${formatDuration(uptimeMs)} up; restart ${restarts} in ${formatDuration(backoff.delayMs)}`,
    {
      ...fields,
      restart: restarts,
      delayMs: backoff.delayMs,
    },
  );
  writeState('backoff', Date.now() + backoff.delayMs);
  restartTimer = setTimeout(start, backoff.delayMs);
}

function stop(reason: string): void {
  if (stopping) {
    // Asked twice: no more patience for the child.
    if (child) {
      log('warn', `${name}: ${reason} again; SIGKILL to pid ${child.pid}`);
      child.kill('SIGKILL');
    }
    return;
  }
  stopping = true;
  if (restartTimer) clearTimeout(restartTimer);
  const running = child;
  if (!running) {
    log('info', `${name}: ${reason} between runs; not restarting`);
    finish(exitCode);
    return;
  }
  log('info', `${name}: ${reason}; SIGTERM to pid ${running.pid}, SIGKILL after ${formatDuration(stopGraceMs)}`);
  writeState('stopping');
  running.kill('SIGTERM');
  setTimeout(() => {
    if (child === running) {
      log('warn', `${name} did not stop within ${formatDuration(stopGraceMs)}; SIGKILL to pid ${running.pid}`);
      running.kill('SIGKILL');
    }
  }, stopGraceMs);
}

function finish(code: number): void {
  rmSync(childPidFile, { force: true });
  rmSync(supervisorPidFile, { force: true });
  writeState('stopped');
  process.exit(code);
}

for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.on(signal, () => stop(`${signal} received`));
}
process.on('uncaughtException', (error) => {
  log('error', `supervisor failed: ${error.message}; stopping ${name}`);
  exitCode = 1;
  stop('supervisor failure');
});
// Whatever ends this process, its child does not outlive it unnoticed: it is told to stop.
process.on('exit', () => {
  if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    try {
      process.kill(child.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
});

writeAtomically(supervisorPidFile, `${process.pid}\n`);
start();
