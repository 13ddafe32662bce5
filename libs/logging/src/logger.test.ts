// createLogger as the services use it. pino writes to file descriptor 1 itself, not through
// process.stdout, so each case runs in a child process and reads the JSON lines it printed.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

jest.setTimeout(30_000);

function printed(code: string): { stdout: string; lines: Record<string, unknown>[] } {
  const child = spawnSync(
    process.execPath,
    ['--import', 'tsx', '-e', `const { createLogger } = require(process.env.LOGGING_MODULE);\n${code}`],
    { env: { ...process.env, LOGGING_MODULE: resolve(__dirname, 'index.ts') }, encoding: 'utf8', timeout: 20_000 },
  );
  expect({ status: child.status, stderr: child.stderr }).toEqual({ status: 0, stderr: '' });
  const lines = child.stdout
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { stdout: child.stdout, lines };
}

describe('createLogger', () => {
  it('keeps credentials, API keys and dispatch tokens out of its JSON lines, and the other fields in', () => {
    const { stdout, lines } = printed(`
      createLogger({ service: 'gateway', level: 'info', pretty: false }).info(
        {
          req: { headers: { authorization: 'Bearer s3cret-1', cookie: 'sid=s3cret-2', 'user-agent': 'jest' } },
          headers: { authorization: 'Basic s3cret-3' },
          user: { name: 'bob', password: 's3cret-4', apiKey: 's3cret-5', api_key: 's3cret-6' },
          job: { requestId: 'r1', dispatchToken: 's3cret-7', dispatch_token: 's3cret-8', token: 's3cret-9', secret: 's3cret-10' },
          dispatchToken: 's3cret-11',
          apiKey: 's3cret-12',
        },
        'request received',
      );
    `);
    expect(stdout).not.toMatch(/s3cret/);
    const r = '[redacted]';
    expect(lines).toHaveLength(1);
    const { time, pid, ...line } = lines[0]!;
    expect(time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(typeof pid).toBe('number');
    expect(line).toEqual({
      level: 30,
      service: 'gateway',
      req: { headers: { authorization: r, cookie: r, 'user-agent': 'jest' } },
      headers: { authorization: r },
      user: { name: 'bob', password: r, apiKey: r, api_key: r },
      job: { requestId: 'r1', dispatchToken: r, dispatch_token: r, token: r, secret: r },
      dispatchToken: r,
      apiKey: r,
      msg: 'request received',
    });
  });

  it('writes only the lines at or above its level', () => {
    const { lines } = printed(`
      const logger = createLogger({ service: 'results', level: 'warn', pretty: false });
      logger.info('not written');
      logger.warn('written');
    `);
    expect(lines.map(({ level, service, msg }) => ({ level, service, msg }))).toEqual([
      { level: 40, service: 'results', msg: 'written' },
    ]);
  });
});
