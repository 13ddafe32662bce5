// The supervisor as a process, driving a stand-in child (a few lines of node): no servers needed.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

jest.setTimeout(30_000);

const script = resolve(__dirname, 'supervise.ts');
const idle = 'setInterval(() => {}, 1000)';
const stubborn =
  "process.on('SIGTERM', () => console.log('ignoring SIGTERM')); console.log('handler ready'); setInterval(() => {}, 1000)";

async function until<T>(read: () => T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('supervise.ts', () => {
  let dir: string;
  let supervisor: ChildProcess;
  let output: string;

  const childPid = () => {
    const file = join(dir, 't.child.pid');
    return existsSync(file) ? Number(readFileSync(file, 'utf8')) || undefined : undefined;
  };
  const state = () => readFileSync(join(dir, 't.state'), 'utf8');
  const exited = () =>
    new Promise<number | null>((done) => {
      if (supervisor.exitCode !== null) done(supervisor.exitCode);
      else supervisor.once('exit', (code) => done(code));
    });

  function startSupervisor(childCode: string): void {
    output = '';
    supervisor = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        script,
        '--name',
        't',
        '--dir',
        dir,
        '--stop-grace-seconds',
        '1',
        '--',
        process.execPath,
        '-e',
        childCode,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    supervisor.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    supervisor.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'supervise-test-'));
  });
  afterEach(() => {
    if (supervisor?.exitCode === null && supervisor.signalCode === null) supervisor.kill('SIGKILL');
    const pid = childPid();
    if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('restarts a SIGKILLed child after 1 s and logs why, then stops it for good on SIGTERM', async () => {
    startSupervisor(idle);
    const first = await until(childPid, 'the first child');
    expect(readFileSync(join(dir, 't.supervisor.pid'), 'utf8').trim()).toBe(String(supervisor.pid));

    process.kill(first, 'SIGKILL');
    const second = await until(() => {
      const pid = childPid();
      return pid !== first ? pid : undefined;
    }, 'the restarted child');
    expect(output).toMatch(/"msg":"t exited \(signal SIGKILL\) after [\d.]+ (ms|s) up; restart 1 in 1\.0 s"/);
    expect(state()).toMatch(/restarts=1\n/);

    supervisor.kill('SIGTERM');
    expect(await exited()).toBe(0);
    expect(alive(second)).toBe(false);
    expect(output).toMatch(/t stopped \(signal SIGTERM\) after .* up; not restarting/);
    expect(existsSync(join(dir, 't.supervisor.pid'))).toBe(false);
    expect(existsSync(join(dir, 't.child.pid'))).toBe(false);
    expect(state()).toMatch(/^status=stopped\n/);
  });

  it('restarts a child that exits on its own, even with code 0, waiting longer each time', async () => {
    startSupervisor('process.exit(0)');
    await until(() => (/restart 2 in 2\.0 s/.test(output) ? true : undefined), 'the second restart');
    expect(output).toMatch(/t exited \(exit code 0\) after .* up; restart 1 in 1\.0 s/);
    supervisor.kill('SIGTERM');
    expect(await exited()).toBe(0);
  });

  it('SIGKILLs a child that ignores SIGTERM once the grace period is over', async () => {
    startSupervisor(stubborn);
    const pid = await until(childPid, 'the child');
    // The child says when its SIGTERM handler is in place (the supervisor's start line comes earlier).
    await until(() => (output.includes('handler ready') ? true : undefined), "the child's SIGTERM handler");
    supervisor.kill('SIGTERM');
    expect(await exited()).toBe(0);
    expect(alive(pid)).toBe(false);
    expect(output).toContain('ignoring SIGTERM');
    expect(output).toMatch(/did not stop within 1\.0 s; SIGKILL/);
    expect(output).toMatch(/t stopped \(signal SIGKILL\)/);
  });
});
