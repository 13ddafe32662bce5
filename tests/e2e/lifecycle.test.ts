import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { startSystem, type System } from '../support/system';

jest.setTimeout(120_000);

const ROOT = resolve(__dirname, '..', '..');

function runService(name: string, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'services', name, 'src', 'server.ts')], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    // 'close', not 'exit': the output's last lines may still be in the pipes at 'exit'.
    child.once('close', (code) => done({ code, output }));
  });
}

describe('each service validates its configuration at boot and stops cleanly', () => {
  it('refuses to start on a bad value, naming the variable and not echoing secrets', async () => {
    const gateway = await runService('gateway', {
      PORT: 'eighty',
      AMQP_URL: 'amqp://u:hunter2@127.0.0.1:1/x',
      MONGODB_URI: 'mongodb://127.0.0.1:1/',
      S3_ACCESS_KEY_ID: 'k',
      S3_SECRET_ACCESS_KEY: 's',
      ADMIN_API_KEY: 'too-short',
    });
    expect(gateway.code).toBe(1);
    expect(gateway.output).toMatch(/PORT/);
    expect(gateway.output).toMatch(/ADMIN_API_KEY/);
    expect(gateway.output).not.toMatch(/hunter2|too-short/);

    const inference = await runService('inference', { PREFETCH: '0' });
    expect(inference.code).toBe(1);
    expect(inference.output).toMatch(/AMQP_URL is required/);
    expect(inference.output).toMatch(/PREFETCH/);

    const results = await runService('results', { AMQP_URL: 'http://not-amqp', MONGODB_URI: 'mongodb://x/' });
    expect(results.code).toBe(1);
    expect(results.output).toMatch(/AMQP_URL/);
  });

  describe('with the system running', () => {
    let system: System;
    beforeAll(async () => {
      system = await startSystem();
    });
    afterAll(async () => {
      await system?.stop();
    });

    it('exits 0 on SIGTERM, closing its connections', async () => {
      for (const name of ['gateway', 'inference', 'results'] as const) {
        expect({ name, code: await system.kill(name, 'SIGTERM') }).toEqual({ name, code: 0 });
        expect(system.logs(name)).toMatch(/stopped/);
      }
    });
  });
});
