// The production build (npm run build, what the images run): each compiled entry point loads
// and starts under plain node (no tsx), the worker thread and the child process the services
// start from beside server.js work compiled, and each service's code loads only npm packages its
// image installs (results: no sharp, no ONNX Runtime).
import { fork, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildDeployable, ENTRY_POINTS, type Deployable } from '../../infra/build';

const ROOT = join(__dirname, '../..');
const DEPLOYABLES = Object.keys(ENTRY_POINTS) as Deployable[];
/** The workspace whose production dependencies each image installs (Dockerfile, deps stage). */
const WORKSPACE: Record<Deployable, string> = {
  gateway: 'services/gateway',
  inference: 'services/inference',
  results: 'services/results',
  setup: 'libs/broker',
};

interface PackageJson {
  dependencies?: Record<string, string>;
}
const readJson = <T>(path: string) => JSON.parse(readFileSync(path, 'utf8')) as T;

/** The npm packages a workspace's production install holds at top level: its own and its @cxr libraries' dependencies. */
function productionDependencies(workspace: string, seen = new Set<string>()): Set<string> {
  for (const name of Object.keys(readJson<PackageJson>(join(ROOT, workspace, 'package.json')).dependencies ?? {})) {
    if (name.startsWith('@cxr/')) productionDependencies(`libs/${name.slice(5)}`, seen);
    else seen.add(name);
  }
  return seen;
}

/** Runs a compiled file with an empty environment (PATH aside) and returns how it ended. */
function runBare(file: string) {
  return spawnSync(process.execPath, [file], { env: { PATH: process.env.PATH }, encoding: 'utf8', timeout: 60_000 });
}

describe('the production build', () => {
  let out: string;
  const loads = new Map<Deployable, string[]>();

  beforeAll(async () => {
    // Inside the repo, as dist/ is in the image: node finds the packages in the node_modules above.
    mkdirSync(join(ROOT, 'dist'), { recursive: true });
    out = mkdtempSync(join(ROOT, 'dist', 'test-'));
    for (const name of DEPLOYABLES) loads.set(name, await buildDeployable(name, out));
  }, 120_000);
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it.each(['gateway', 'inference', 'results'] as const)(
    'dist/%s/server.js starts under plain node and stops on the missing configuration',
    (service) => {
      const run = runBare(join(out, service, 'server.js'));
      expect(run.stderr).not.toMatch(/Cannot find module|ERR_MODULE_NOT_FOUND/);
      expect(run.stderr).toContain(`${service}: invalid configuration: AMQP_URL is required`);
      expect(run.status).toBe(1);
    },
  );

  it("the gateway's web page is copied beside server.js, where the gateway reads it", () => {
    const files = readdirSync(join(ROOT, 'services/gateway/src/web'));
    expect(files).toEqual(expect.arrayContaining(['index.html', 'app.js', 'app.css']));
    for (const file of files) {
      expect(readFileSync(join(out, 'gateway', 'web', file), 'utf8')).toBe(
        readFileSync(join(ROOT, 'services/gateway/src/web', file), 'utf8'),
      );
    }
  });

  it('the setup tools start under plain node and ask for their settings', () => {
    expect(runBare(join(out, 'setup', 'declare-topology.js')).stderr).toContain('AMQP_ADMIN_URL is required');
    expect(runBare(join(out, 'setup', 'provision-rabbitmq.js')).stderr).toContain(
      'RABBITMQ_MANAGEMENT_URL is required',
    );
  });

  // In a process of its own, as the service runs it: ONNX Runtime's addon registers itself only on
  // its first load in a process, so a thread that loaded it here and ended would leave every later
  // ONNX Runtime test in this jest process unable to load it ("Module did not self-register").
  it('the compiled ONNX Runtime thread starts beside server.js and answers a load', () => {
    const script = `
      const { Worker } = require('node:worker_threads');
      const worker = new Worker(process.argv[1], { workerData: { intraOpNumThreads: 1, allowSpinning: false } });
      const messages = [];
      worker.on('error', (error) => { console.error(error); process.exit(1); });
      worker.on('message', (message) => {
        messages.push(message);
        if (message.type === 'ready') {
          worker.postMessage({ type: 'load', id: 1, handle: 'not-a-model', bytes: new Uint8Array([1, 2, 3]) });
        } else {
          console.log(JSON.stringify(messages.map((m) => ({ type: m.type, id: m.id }))));
          void worker.terminate();
        }
      });`;
    const run = spawnSync(process.execPath, ['-e', script, join(out, 'inference', 'ort-thread.js')], {
      env: { PATH: process.env.PATH },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual([{ type: 'ready' }, { type: 'failed', id: 1 }]);
  }, 60_000);

  it('the compiled model check runs as the gateway forks it and refuses a file that is not a model', async () => {
    const child = fork(join(out, 'gateway', 'model-check-process.js'), [], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    try {
      const reply = await new Promise<{ ok: boolean; code?: string }>((resolve, reject) => {
        child.once('message', (m: { ok: boolean; code?: string }) => resolve(m));
        child.once('exit', (code) => reject(new Error(`the model check exited (${code}) without answering`)));
        child.send({ path: join(out, 'no-such-model.onnx'), labels: ['a'], spec: {} });
      });
      expect(reply).toMatchObject({ ok: false, code: 'MODEL_NOT_LOADABLE' });
    } finally {
      child.kill('SIGKILL');
    }
  }, 60_000);

  it.each(DEPLOYABLES)("%s's code loads only packages its image installs", (name) => {
    const installed = productionDependencies(WORKSPACE[name]);
    const loaded = loads.get(name) ?? [];
    expect(loaded.length).toBeGreaterThan(0);
    for (const pkg of loaded) expect(installed).toContain(pkg);
  });

  it('results neither loads nor installs sharp or ONNX Runtime; the image workers do', () => {
    for (const heavy of ['sharp', 'onnxruntime-node']) {
      expect(loads.get('results')).not.toContain(heavy);
      expect(productionDependencies('services/results')).not.toContain(heavy);
      expect(loads.get('inference')).toContain(heavy);
      expect(loads.get('gateway')).toContain(heavy);
    }
  });

  it('the lock file nests no package under a workspace (the bundles resolve every package from one node_modules)', () => {
    const lock = readJson<{ packages: Record<string, unknown> }>(join(ROOT, 'package-lock.json'));
    expect(Object.keys(lock.packages).filter((p) => /^(libs|services)\/[^/]+\/node_modules\//.test(p))).toEqual([]);
  });
});
