// @cxr/client as it is published: its types are the ones generated from the committed OpenAPI
// document (services/gateway/openapi.json), the package builds on its own, and its packed tarball
// holds the `cxr` command, which runs.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

jest.setTimeout(120_000);

const ROOT = join(__dirname, '..', '..');

describe('the @cxr/client package', () => {
  it('has the types generated from the committed document (npm run generate -w @cxr/client rewrites them)', async () => {
    // In a process of its own: openapi-typescript needs ESM-only packages jest cannot load.
    const generated = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'libs/client/scripts/generate.ts', '--stdout'],
      { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 },
    );
    expect(readFileSync(join(ROOT, 'libs/client/src/schema.ts'), 'utf8')).toBe(generated.stdout);
  });

  it('type-checks as published (its tsconfig.build.json, no paths into the repo)', async () => {
    const tsc = promisify(execFile)(
      join(ROOT, 'node_modules', '.bin', 'tsc'),
      ['-p', 'libs/client/tsconfig.build.json', '--noEmit'],
      { cwd: ROOT },
    );
    await expect(tsc).resolves.toMatchObject({ stdout: '' });
  });

  it('names its entry points, types and files for a registry', () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'libs/client/package.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(manifest).not.toHaveProperty('private');
    expect(manifest).toMatchObject({
      main: 'dist/index.js',
      types: 'dist/index.d.ts',
      exports: { '.': { types: './dist/index.d.ts', default: './dist/index.js' } },
      files: ['dist', 'README.md'],
      bin: { cxr: 'dist/cli/bin.js' },
    });
    expect(readFileSync(join(ROOT, 'libs/client/README.md'), 'utf8')).toMatch(/classify\(/);
  });

  it('packs the cxr command, which runs from the tarball and prints its help', async () => {
    const run = promisify(execFile);
    const folder = mkdtempSync(join(tmpdir(), 'cxr-pack-'));
    // npm pack runs prepack (the build), as publishing does.
    const packed = await run('npm', ['pack', '-w', '@cxr/client', '--pack-destination', folder, '--json'], {
      cwd: ROOT,
      env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
    });
    const [{ filename, files }] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];
    expect(files.map((file) => file.path)).toEqual(
      expect.arrayContaining(['package.json', 'README.md', 'dist/index.js', 'dist/cli/bin.js']),
    );
    expect(files.map((file) => file.path).filter((path) => path.includes('.test.'))).toEqual([]);
    await run('tar', ['-xzf', join(folder, filename), '-C', folder]);
    const bin = join(folder, 'package', 'dist', 'cli', 'bin.js');
    expect(readFileSync(bin, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
    // Its dependencies as an install would give them: the repository's node_modules.
    symlinkSync(join(ROOT, 'node_modules'), join(folder, 'package', 'node_modules'));
    const help = await run(process.execPath, [bin, 'classify', '--help'], { cwd: folder });
    expect(help.stdout).toMatch(/Usage: cxr classify \[options\] <paths\.\.\.>/);
    expect(help.stdout).toContain('--concurrency <n>');
  });
});
