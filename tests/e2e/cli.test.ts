// The `cxr` command line against the real system, run as a user runs it (a child process): it
// classifies a folder into a CSV with one row per image, and a run interrupted by Ctrl-C and run
// again ends with every image classified and exactly one request per image.
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildDemoModel, renderSample, type SampleKind } from '@cxr/demo-model';
import { CxrClient, succeed } from '@cxr/client';
import { startSystem, type System } from '../support/system';
import { waitFor } from '../support/wait';

jest.setTimeout(240_000);

const ROOT = resolve(__dirname, '..', '..');
const BIN = join(ROOT, 'libs', 'client', 'src', 'cli', 'bin.ts');
const KINDS: SampleKind[] = ['bright', 'dark', 'striped'];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts `cxr ARGS`; `running` ends with its exit code and output. */
function cxr(args: string[], env: Record<string, string>): { child: ReturnType<typeof spawn>; running: Promise<Run> } {
  const child = spawn(process.execPath, ['--import', 'tsx', BIN, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end();
  const running = new Promise<Run>((resolveRun) => child.once('close', (code) => resolveRun({ code, stdout, stderr })));
  return { child, running };
}

/** A folder of `count` images in two sub-folders (and one file that is not an image). */
async function imageFolder(count: number, seed: number): Promise<string> {
  const folder = mkdtempSync(join(tmpdir(), 'cxr-cli-'));
  for (const sub of ['a', 'b']) mkdirSync(join(folder, sub));
  for (let i = 0; i < count; i++) {
    const kind = KINDS[i % KINDS.length] as SampleKind;
    const name = join(folder, i % 2 ? 'a' : 'b', `${kind}-${String(i).padStart(3, '0')}.png`);
    writeFileSync(name, await renderSample(kind, { width: 64, height: 64, seed: seed + i }));
  }
  writeFileSync(join(folder, 'notes.txt'), 'not an image');
  return folder;
}

/** The CSV's rows as objects (the fields this test writes need no quoting). */
function readCsv(path: string): Record<string, string | undefined>[] {
  const [header, ...lines] = readFileSync(path, 'utf8').trimEnd().split('\r\n');
  const columns = (header ?? '').split(',');
  return lines.map(
    (line) =>
      Object.fromEntries(line.split(',').map((value, i) => [columns[i] ?? '', value])) as Record<string, string>,
  );
}

describe('the cxr command line', () => {
  let system: System;
  let env: Record<string, string>;
  let client: CxrClient;

  const newDataset = async (name: string) => {
    const dataset = await succeed(
      client.api.POST('/v1/datasets', { body: { name, display_name: name, img_width: 64, img_height: 64 } }),
    );
    const demo = buildDemoModel();
    await client.uploadModel(dataset.id, {
      file: demo.onnx,
      labels: [...demo.labels],
      inputSpec: { ...demo.inputSpec, output: 'auto' },
    });
    return dataset.id;
  };
  const requestsTo = (dataset: string) => system.db.models.ClassificationRequest.countDocuments({ dataset });

  beforeAll(async () => {
    system = await startSystem();
    const admin = new CxrClient({ baseUrl: system.gatewayUrl, apiKey: system.adminKey });
    const created = await succeed(admin.api.POST('/v1/users', { body: { username: 'cli-user' } }));
    client = new CxrClient({ baseUrl: system.gatewayUrl, apiKey: created.api_key.key });
    env = {
      CXR_URL: system.gatewayUrl,
      CXR_API_KEY: created.api_key.key,
      XDG_CONFIG_HOME: mkdtempSync(join(tmpdir(), 'cxr-cli-config-')),
    };
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('classifies a folder into a CSV with one row per image, and a second run sends nothing twice', async () => {
    const dataset = await newDataset('cli-folder');
    const folder = await imageFolder(20, 100);
    const out = join(folder, 'results.csv');
    const first = await cxr(['classify', folder, '--dataset', dataset, '--out', out], env).running;
    expect(first).toMatchObject({ code: 0 });
    expect(first.stderr).toMatch(/20\/20 images \| [\d.]+\/s \| ETA/);
    expect(first.stdout).toMatch(/classified\s+20/);

    const rows = readCsv(out);
    expect(rows.map((row) => row.path)).toEqual([...rows.map((row) => row.path)].sort());
    expect(rows).toHaveLength(20);
    for (const row of rows) {
      expect(row.state).toBe('classified');
      expect(row.request_id).toMatch(/^[0-9a-f]{24}$/);
      expect(KINDS).toContain(row.label);
    }
    expect(await requestsTo(dataset)).toBe(20);

    const again = await cxr(['classify', folder, '--dataset', dataset, '--json'], env).running;
    expect(again.code).toBe(0);
    const report = JSON.parse(again.stdout) as { summary: { classified: number }; results: { request_id: string }[] };
    expect(report.summary.classified).toBe(20);
    expect(report.results.map((row) => row.request_id)).toEqual(rows.map((row) => row.request_id));
    expect(await requestsTo(dataset)).toBe(20);
  });

  it('stops on Ctrl-C with exit code 130, and a rerun finishes every image without doubling one', async () => {
    const dataset = await newDataset('cli-interrupted');
    const folder = await imageFolder(20, 200);
    const out = join(folder, 'results.jsonl');
    // No worker: the first images stay queued, so Ctrl-C surely comes in the middle of the run.
    await system.kill('inference');
    const interrupted = cxr(['classify', folder, '--dataset', dataset, '--concurrency', '4', '--out', out], env);
    await waitFor(
      '4 requests submitted',
      () => requestsTo(dataset),
      (count) => count >= 4,
      60_000,
    );
    interrupted.child.kill('SIGINT');
    const stopped = await interrupted.running;
    expect(stopped.code).toBe(130);
    expect(stopped.stderr).toMatch(/interrupted: sending no more images/);
    const partial = readFileSync(out, 'utf8')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { state: string });
    expect(partial.length).toBeGreaterThanOrEqual(4);
    expect(partial.length).toBeLessThan(20);
    expect(partial.every((row) => row.state === 'interrupted')).toBe(true);
    const before = await requestsTo(dataset);
    expect(before).toBeLessThan(20);

    await system.start('inference');
    const rerun = await cxr(['classify', folder, '--dataset', dataset, '--out', out], env).running;
    expect(rerun.code).toBe(0);
    const rows = readFileSync(out, 'utf8')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { state: string });
    expect(rows).toHaveLength(20);
    expect(rows.every((row) => row.state === 'classified')).toBe(true);
    expect(await requestsTo(dataset)).toBe(20);
  });

  it('uploads a model with progress, lists it, makes another the default and retires one, with --json', async () => {
    const created = await cxr(
      ['datasets', 'create', 'cli-models', '--width', '64', '--height', '64', '--display-name', 'CLI models', '--json'],
      env,
    ).running;
    expect(created.code).toBe(0);
    const dataset = (JSON.parse(created.stdout) as { id: string }).id;
    const demo = buildDemoModel();
    const folder = mkdtempSync(join(tmpdir(), 'cxr-cli-model-'));
    const onnx = join(folder, 'demo.onnx');
    writeFileSync(onnx, demo.onnx);
    const spec = join(folder, 'spec.json');
    writeFileSync(spec, JSON.stringify({ ...demo.inputSpec, output: 'auto' }));
    const upload = (name: string) =>
      cxr(
        [
          'models',
          'upload',
          onnx,
          '--dataset',
          dataset,
          '--labels',
          demo.labels.join(','),
          '--input-spec',
          `@${spec}`,
        ].concat(['--name', name, '--json']),
        env,
      ).running;
    const first = await upload('first');
    expect(first.code).toBe(0);
    expect(first.stderr).toMatch(/uploading 100% \| [\d.]+\/[\d.]+ MB/);
    const firstModel = JSON.parse(first.stdout) as { id: string; is_default: boolean; labels: string[] };
    expect(firstModel).toMatchObject({ is_default: true, labels: [...demo.labels] });
    const second = JSON.parse((await upload('second')).stdout) as { id: string; is_default: boolean };
    expect(second.is_default).toBe(false);

    const chosen = await cxr(['models', 'default', second.id], env).running;
    expect(chosen.code).toBe(0);
    expect(chosen.stdout).toContain(`(${second.id}) is the default of dataset ${dataset}`);
    const retired = await cxr(['models', 'retire', firstModel.id, '--json'], env).running;
    expect((JSON.parse(retired.stdout) as { status: string }).status).toBe('retired');

    const listed = await cxr(['models', 'list', '--dataset', dataset], env).running;
    const lines = listed.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^id\s+name\s+version\s+status\s+default/);
    expect(lines).toHaveLength(3); // a header and the two models, newest first
    expect(lines[1]).toMatch(
      new RegExp(`^${second.id}\\s+second\\s+2\\s+active\\s+yes\\s+${demo.labels.join(',')}\\s`),
    );
    expect(lines[2]).toMatch(new RegExp(`^${firstModel.id}\\s+first\\s+1\\s+retired\\s+${demo.labels.join(',')}\\s`));
    const shown = await cxr(['datasets', 'show', dataset, '--json'], env).running;
    expect(JSON.parse(shown.stdout)).toMatchObject({
      id: dataset,
      default_model: second.id,
      display_name: 'CLI models',
    });
  });

  it('saves its settings with cxr login (mode 600), refuses them readable by others, and explains a bad key', async () => {
    const home = { XDG_CONFIG_HOME: mkdtempSync(join(tmpdir(), 'cxr-cli-login-')) };
    const login = await cxr(['login', '--url', env.CXR_URL as string, '--api-key', env.CXR_API_KEY as string], home)
      .running;
    expect(login.code).toBe(0);
    expect(login.stdout).toMatch(/logged in to .* as cli-user/);
    const file = join(home.XDG_CONFIG_HOME, 'cxr', 'config.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const listed = await cxr(['datasets', 'list', '--json'], home).running;
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as { name: string }[]).map((d) => d.name)).toContain('cli-folder');

    chmodSync(file, 0o644);
    const refused = await cxr(['datasets', 'list'], home).running;
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`run chmod 600 ${file}`);

    const badKey = await cxr(['datasets', 'list'], { ...env, CXR_API_KEY: 'cxr_not-a-key' }).running;
    expect(badKey).toMatchObject({ code: 1, stdout: '' });
    expect(badKey.stderr).toBe('cxr: the API key is not valid; run cxr login or set CXR_API_KEY\n');
  });
});
