// The committed OpenAPI document (services/gateway/openapi.json, the one the gateway serves: the e2e
// contract test checks that) linted by Redocly CLI with the rules of redocly.yaml: no error and no
// warning. No network: telemetry and the update check are off.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

jest.setTimeout(60_000);

const ROOT = join(__dirname, '..', '..');

interface LintReport {
  totals: { errors: number; warnings: number; ignored: number };
  problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[];
}

describe('the OpenAPI document', () => {
  it('passes `redocly lint` with no error and no warning', async () => {
    const lint = await promisify(execFile)(
      join(ROOT, 'node_modules', '.bin', 'redocly'),
      ['lint', 'services/gateway/openapi.json', '--config', 'redocly.yaml', '--format', 'json'],
      {
        cwd: ROOT,
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
        maxBuffer: 16 * 1024 * 1024,
      },
    ).catch((error: { stdout?: string; message: string }) => {
      // Exits 1 when it finds errors; the report is on stdout all the same.
      if (!error.stdout) throw error;
      return { stdout: error.stdout };
    });
    const report = JSON.parse(lint.stdout) as LintReport;
    const problems = report.problems.map((p) => `${p.severity} ${p.ruleId} at ${p.location[0]?.pointer}: ${p.message}`);
    expect(problems).toEqual([]);
    expect(report.totals).toEqual({ errors: 0, warnings: 0, ignored: 0 });
  });
});
