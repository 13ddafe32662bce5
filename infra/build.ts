// Compiles each service to plain JavaScript for the production images (npm run build): one
// CommonJS bundle per entry point under dist/<service>/, with the workspace libraries (@cxr/*,
// whose package.json point at TypeScript sources) inlined and every npm package left to
// node_modules, where the image installs the service's production dependencies from the lock
// file. A worker thread's or child process's entry sits beside server.js, where the code that
// starts it looks for it (join(__dirname, 'ort-thread.js'), 'model-check-process.js').
// The gateway's web page (services/gateway/src/web) is copied beside them.
// Development is unchanged: tsx runs the sources directly.
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build, type Plugin } from 'esbuild';

const ROOT = join(__dirname, '..');

/** Each deployable and its entry points (the first is what the image runs). */
export const ENTRY_POINTS = {
  gateway: ['services/gateway/src/server.ts', 'services/gateway/src/lib/model-check-process.ts'],
  inference: ['services/inference/src/server.ts', 'services/inference/src/ort-thread.ts'],
  results: ['services/results/src/server.ts'],
  // The one-shot RabbitMQ accounts and topology (compose's setup service, the Kubernetes Job).
  setup: ['infra/tools/provision-rabbitmq.ts', 'infra/tools/declare-topology.ts'],
} as const;
export type Deployable = keyof typeof ENTRY_POINTS;

/** Files a deployable reads at run time from beside server.js: [source, destination in its folder]. */
const ASSETS: Partial<Record<Deployable, [string, string][]>> = {
  gateway: [['services/gateway/src/web', 'web']],
};

/** Bare imports other than our workspace libraries stay require() calls, resolved at run time. */
const npmPackagesExternal: Plugin = {
  name: 'npm-packages-external',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) =>
      args.path.startsWith('@cxr/') || args.path.startsWith('node:') ? undefined : { path: args.path, external: true },
    );
  },
};

/** The npm package an import names ('@aws-sdk/client-s3/x' → '@aws-sdk/client-s3'). */
export function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/**
 * Builds one deployable into outDir/<name>/ and writes there the npm packages its code loads
 * (packages.json), which the tests compare with the packages its image installs.
 */
export async function buildDeployable(name: Deployable, outDir: string): Promise<string[]> {
  const dir = join(outDir, name);
  rmSync(dir, { recursive: true, force: true });
  const result = await build({
    entryPoints: ENTRY_POINTS[name].map((entry) => join(ROOT, entry)),
    outdir: dir,
    entryNames: '[name]',
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'cjs',
    sourcemap: true,
    // The workspace libraries resolve through tsconfig paths, to their TypeScript sources.
    tsconfig: join(ROOT, 'tsconfig.json'),
    plugins: [npmPackagesExternal],
    metafile: true,
    logLevel: 'warning',
  });
  const packages = new Set<string>();
  for (const output of Object.values(result.metafile.outputs)) {
    for (const imported of output.imports) {
      // require.resolve is not a load (ort-pool resolves tsx only when it runs as TypeScript).
      if (imported.external && imported.kind !== 'require-resolve' && !imported.path.startsWith('node:'))
        packages.add(packageName(imported.path));
    }
  }
  for (const [from, to] of ASSETS[name] ?? []) cpSync(join(ROOT, from), join(dir, to), { recursive: true });
  const sorted = [...packages].sort();
  writeFileSync(join(dir, 'packages.json'), `${JSON.stringify(sorted, null, 2)}\n`);
  return sorted;
}

async function main(): Promise<void> {
  const outDir = join(ROOT, 'dist');
  const only = process.argv.slice(2) as Deployable[];
  for (const name of only.length ? only : (Object.keys(ENTRY_POINTS) as Deployable[])) {
    if (!(name in ENTRY_POINTS))
      throw new Error(`unknown deployable ${name} (${Object.keys(ENTRY_POINTS).join(', ')})`);
    const packages = await buildDeployable(name, outDir);
    console.log(`[build] dist/${name}: ${ENTRY_POINTS[name].length} entry point(s), loads ${packages.join(' ')}`);
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(`[build] ${(error as Error).message}`);
    process.exit(1);
  });
}
