// @cxr/client as it is published: its types are the ones generated from the committed OpenAPI
// document (services/gateway/openapi.json), and the package builds on its own.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
    });
    expect(readFileSync(join(ROOT, 'libs/client/README.md'), 'utf8')).toMatch(/classify\(/);
  });
});
