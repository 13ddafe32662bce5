// Starts the three services as separate processes on the real servers, each test file with
// its own vhost, database and bucket, and drives them over HTTP like a client would.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import amqp from 'amqplib';
import { declareTopology } from '@cxr/broker';
import { connectDatabase, type Database } from '@cxr/db';
import { ObjectStore } from '@cxr/storage';
import { servicePort } from './ports';
import { createVhost, randomName, serviceAccounts, stackEnv, type TestVhost } from './stack';
import { waitFor, WaitTimeoutError } from './wait';

const ROOT = resolve(__dirname, '..', '..');
export type ServiceName = 'gateway' | 'inference' | 'results';

interface Running {
  child: ChildProcess;
  port: number;
  exited: Promise<number | null>;
}

export interface System {
  gatewayUrl: string;
  adminKey: string;
  vhost: TestVhost;
  db: Database;
  store: ObjectStore;
  logDir: string;
  start(name: ServiceName, extraEnv?: Record<string, string>): Promise<void>;
  /** Sends a signal and waits for the process to end. */
  kill(name: ServiceName, signal?: NodeJS.Signals): Promise<number | null>;
  healthUrl(name: ServiceName): string;
  /** The service's counters (GET /stats of inference and results). */
  stats<T>(name: ServiceName): Promise<T>;
  logs(name: ServiceName): string;
  stop(): Promise<void>;
}

async function waitForHealth(url: string, running: Running, name: string, logFile: string): Promise<void> {
  let exited = false;
  void running.exited.then(() => {
    exited = true;
  });
  try {
    await waitFor(
      `${name} healthy at ${url}`,
      async () => {
        if (exited) throw new Error(`${name} exited during start; log: ${logFile}\n${tail(logFile)}`);
        return fetch(url).then(
          (response) => response.ok,
          () => false, // not listening yet
        );
      },
      (ok) => ok,
      60_000,
    );
  } catch (error) {
    if (!(error instanceof WaitTimeoutError)) throw error;
    throw new Error(`${name} did not become healthy at ${url} within 60 s; log: ${logFile}\n${tail(logFile)}`);
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-30).join('\n');
  } catch {
    return '(no log)';
  }
}

export interface SystemOptions {
  /**
   * Run the services on their own database and S3 accounts, as ./cxr up does: the service
   * database and bucket (shared, so left in place by stop()) instead of a new one of the root
   * and owner accounts. `db` and `store` stay the owner's and root's, for checking.
   */
  serviceAccounts?: boolean;
}

export async function startSystem(
  services: ServiceName[] = ['gateway', 'inference', 'results'],
  options: SystemOptions = {},
): Promise<System> {
  const env = stackEnv();
  const vhost = await createVhost();
  const connection = await amqp.connect(vhost.amqpUrl);
  await declareTopology(await connection.createChannel(), { jobDeliveryLimit: 3 });
  await connection.close();

  const accounts = options.serviceAccounts ? serviceAccounts() : null;
  const database = accounts?.database ?? randomName('e2e').replace('-', '_');
  const bucket = accounts?.bucket ?? randomName('e2e');
  const db = await connectDatabase(env.mongoUri, database);
  const store = ObjectStore.fromConfig({ ...env.s3, bucket });
  if (!accounts) await store.ensureBucket();
  const adminKey = randomBytes(32).toString('base64url');
  const webhookSigningKey = randomBytes(32).toString('base64url');
  const logDir = mkdtempSync(join(tmpdir(), 'cxr-e2e-'));
  const running = new Map<ServiceName, Running>();
  const ports: Record<ServiceName, number> = {
    gateway: await servicePort(),
    inference: await servicePort(),
    results: await servicePort(),
  };

  const common = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    LOG_LEVEL: process.env.TEST_SERVICE_LOG_LEVEL ?? 'info',
    AMQP_URL: vhost.amqpUrl,
    MONGODB_URI: env.mongoUri,
    MONGODB_DATABASE: database,
    S3_ENDPOINT: env.s3.endpoint,
    S3_REGION: env.s3.region,
    S3_ACCESS_KEY_ID: env.s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: env.s3.secretAccessKey,
    S3_BUCKET: bucket,
    // The lifecycle's timers, short so tests see them fire (gateway and results share them).
    PUBLISH_GRACE_SECONDS: '2',
    DEAD_LETTER_GRACE_SECONDS: '1',
  };
  const perService: Record<ServiceName, NodeJS.ProcessEnv> = {
    gateway: {
      PORT: String(ports.gateway),
      ADMIN_API_KEY: adminKey,
      SWEEP_INTERVAL_SECONDS: '1',
      // Its default follows the cores (8 on a 2-core runner) and some tests send a dozen at once;
      // shedding has its own tests (tests/e2e/overload.test.ts), which set it.
      MAX_SUBMISSIONS_IN_FLIGHT: '32',
      // Enough to run the warm-up at every start, not to slow the many restarts down.
      WARM_UP_REQUESTS: '100',
      WEBHOOK_SIGNING_KEY: webhookSigningKey,
      // Webhook receivers of tests listen on this machine; retries come quickly.
      WEBHOOK_ALLOWED_NETWORKS: '127.0.0.0/8',
      WEBHOOK_BACKOFF_SECONDS: '1',
      WEBHOOK_BACKOFF_MAX_SECONDS: '2',
      WEBHOOK_TIMEOUT_SECONDS: '5',
    },
    inference: { HEALTH_PORT: String(ports.inference), WORKER_ID: `e2e-${randomBytes(3).toString('hex')}` },
    results: { HEALTH_PORT: String(ports.results) },
  };
  if (accounts) {
    // Each service its own accounts and nothing else, as infra/run.sh gives them.
    // undefined: spawn leaves the variable out.
    const unset = { MONGODB_URI: undefined, S3_ACCESS_KEY_ID: undefined, S3_SECRET_ACCESS_KEY: undefined };
    const s3Keys = (keys: { accessKeyId: string; secretAccessKey: string }) => ({
      S3_ACCESS_KEY_ID: keys.accessKeyId,
      S3_SECRET_ACCESS_KEY: keys.secretAccessKey,
    });
    Object.assign(perService.gateway, { MONGODB_URI: accounts.mongoUri.gateway, ...s3Keys(accounts.s3.gateway) });
    Object.assign(perService.inference, unset, s3Keys(accounts.s3.inference));
    Object.assign(perService.results, unset, { MONGODB_URI: accounts.mongoUri.results });
  }

  const system: System = {
    gatewayUrl: `http://127.0.0.1:${ports.gateway}`,
    adminKey,
    vhost,
    db,
    store,
    logDir,
    healthUrl: (name) => `http://127.0.0.1:${ports[name]}/health`,
    stats: async <T>(name: ServiceName) => (await (await fetch(`http://127.0.0.1:${ports[name]}/stats`)).json()) as T,
    logs: (name) => tail(join(logDir, `${name}.log`)),
    async start(name, extraEnv = {}) {
      const logFile = join(logDir, `${name}.log`);
      const out = createWriteStream(logFile, { flags: 'a' });
      const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'services', name, 'src', 'server.ts')], {
        cwd: ROOT,
        env: { ...common, ...perService[name], ...extraEnv },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout?.pipe(out, { end: false });
      child.stderr?.pipe(out, { end: false });
      // 'close' comes after the child's output has ended, and the log file is flushed before the
      // exit is reported: a test reading the log after a kill sees the last lines ('exit' can
      // come before them).
      const exited = new Promise<number | null>((r) => child.once('close', (code) => out.end(() => r(code))));
      const entry = { child, port: ports[name], exited };
      running.set(name, entry);
      await waitForHealth(system.healthUrl(name), entry, name, logFile);
    },
    async kill(name, signal = 'SIGTERM') {
      const entry = running.get(name);
      if (!entry) return null;
      running.delete(name);
      entry.child.kill(signal);
      return entry.exited;
    },
    async stop() {
      await Promise.all([...running.keys()].map((name) => system.kill(name, 'SIGTERM')));
      if (!accounts) {
        await db.connection.dropDatabase().catch(() => undefined);
        await store.destroyBucket().catch(() => undefined);
      }
      await db.close();
      store.close();
      await vhost.destroy();
    },
  };
  try {
    for (const name of services) await system.start(name);
  } catch (error) {
    await system.stop();
    throw error;
  }
  return system;
}
