// The Dockerfile and docker-compose.yml, read as text and YAML: no Docker engine runs on the
// development and CI machines (and `docker compose config` is not installed), so the images
// cannot be built here. These checks hold the files to what the README promises of them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ENTRY_POINTS } from '../../infra/build';

const ROOT = join(__dirname, '../..');
const SERVICES = ['gateway', 'inference', 'results'] as const;

/** The Dockerfile's stages by name, each with its instructions (continuation lines joined). */
function dockerfileStages(): Map<string, string[]> {
  const lines = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'));
  const stages = new Map<string, string[]>();
  let current: string[] = [];
  for (const line of lines) {
    const from = /^FROM \S+ AS (\S+)$/.exec(line);
    if (from?.[1]) stages.set(from[1], (current = [line]));
    else current.push(line);
  }
  return stages;
}

interface ComposeService {
  image?: string;
  build?: { context: string; target?: string };
  restart?: string;
  ports?: string[];
  container_name?: string;
  environment?: Record<string, string>;
  deploy?: { resources?: { limits?: { cpus?: string; memory?: string } } };
}
const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
};

describe('the Dockerfile', () => {
  const stages = dockerfileStages();
  const arg = /^ARG NODE_IMAGE=(\S+)$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))?.[1];

  it('starts from a pinned Node image, the version the scripts run and test on (infra/deps.sh)', () => {
    const pinned = /^CXR_NODE_VERSION=(\S+)$/m.exec(readFileSync(join(ROOT, 'infra/deps.sh'), 'utf8'))?.[1];
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    expect(arg).toBe(`node:${pinned}-bookworm-slim`);
  });

  it('compiles in a build stage, and runs the bundle as a numeric non-root user with NODE_ENV=production', () => {
    expect(stages.get('build')).toContain('RUN npm ci --no-audit --no-fund && npm run build');
    const runtime = stages.get('runtime') ?? [];
    expect(runtime).toEqual(
      expect.arrayContaining([
        'ENV NODE_ENV=production',
        'USER 1000:1000',
        'CMD ["node", "--enable-source-maps", "dist/server.js"]',
      ]),
    );
    expect(runtime.find((l) => l.startsWith('HEALTHCHECK'))).toMatch(
      /process\.env\.HEALTH_PORT\|\|process\.env\.PORT\)\+'\/ready'/,
    );
  });

  it.each([
    ['gateway', 'PORT=8080'],
    ['inference', 'HEALTH_PORT=8081'],
    ['results', 'HEALTH_PORT=8082'],
  ])('the %s image holds its compiled bundle and only its dependencies, and checks /ready on %s', (service, port) => {
    const stage = stages.get(service) ?? [];
    expect(stage[0]).toBe(`FROM runtime AS ${service}`);
    expect(stage).toContain(`COPY --from=deps /deps/${service}/node_modules node_modules`);
    expect(stage).toContain(`COPY --from=build /src/dist/${service} dist`);
    expect(stage).toContain(`ENV ${port}`);
    expect(stage.join('\n')).not.toMatch(/tsx|\.ts\b|CMD|HEALTHCHECK/);
  });

  it('installs the production dependencies of each workspace the images take', () => {
    const deps = stages.get('deps')?.join('\n') ?? '';
    for (const ws of ['services/gateway', 'services/inference', 'services/results', 'libs/broker']) {
      expect(deps).toContain(ws);
    }
    expect(deps).toContain('npm ci --omit=dev');
    // Every deployable npm run build makes has an image.
    for (const name of Object.keys(ENTRY_POINTS)) expect(stages.has(name)).toBe(true);
  });
});

describe('docker-compose.yml', () => {
  const services = compose.services;

  it('pins every image to a release (no floating tag)', () => {
    expect(services.mongodb?.image).toMatch(/^mongo:7\.0\.\d+$/);
    expect(services.rabbitmq?.image).toMatch(/^rabbitmq:3\.13\.\d+-management$/);
    expect(services.minio?.image).toMatch(/^minio\/minio:RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ$/);
    for (const [name, s] of Object.entries(services))
      expect([name, s.image]).toEqual([name, expect.stringMatching(/:/)]);
  });

  it('restarts every long-running service, and gives every container CPU and memory limits', () => {
    // The one-shot setups: setup (RabbitMQ), mongodb-setup and minio-setup (the services' accounts).
    const longRunning = Object.entries(services).filter(([name]) => !/(^|-)setup$/.test(name));
    expect(longRunning.filter(([, s]) => s.restart !== 'unless-stopped').map(([name]) => name)).toEqual([]);
    for (const [name, s] of Object.entries(services)) {
      const limits = s.deploy?.resources?.limits;
      expect([name, limits?.cpus, limits?.memory]).toEqual([name, expect.any(String), expect.any(String)]);
      expect(`${limits?.cpus} ${limits?.memory}`).toMatch(/^\d+(\.\d+)? \d+[MG]$/);
    }
  });

  it('builds each service from its Dockerfile target', () => {
    for (const name of [...SERVICES, 'setup']) {
      expect(services[name]?.build).toEqual({ context: '.', target: name });
      expect(services[name]?.image).toBe(`cxr-classify/${name}:0.1.0`);
    }
  });

  it('lets inference scale (no host port, no container name)', () => {
    expect(services.inference?.ports).toBeUndefined();
    expect(services.inference?.container_name).toBeUndefined();
  });

  it("gives each service its own database and S3 accounts and none it does not use; root's stay with the setups", () => {
    const env = (name: string) => services[name]?.environment ?? {};
    expect(env('gateway')).toMatchObject({
      S3_ACCESS_KEY_ID: 'cxr-gateway',
      S3_SECRET_ACCESS_KEY: '${S3_GATEWAY_SECRET_ACCESS_KEY}',
    });
    expect(env('gateway').MONGODB_URI).toMatch(/^mongodb:\/\/cxr-gateway:\$\{MONGODB_GATEWAY_PASSWORD\}@/);
    expect(env('inference')).toMatchObject({
      S3_ACCESS_KEY_ID: 'cxr-inference',
      S3_SECRET_ACCESS_KEY: '${S3_INFERENCE_SECRET_ACCESS_KEY}',
    });
    expect(env('inference').MONGODB_URI).toBeUndefined();
    expect(env('results').MONGODB_URI).toMatch(/^mongodb:\/\/cxr-results:\$\{MONGODB_RESULTS_PASSWORD\}@/);
    expect(Object.keys(env('results')).filter((k) => k.startsWith('S3_'))).toEqual([]);
    const rootSecrets = /\$\{(S3_SECRET_ACCESS_KEY|MONGODB_ADMIN_PASSWORD)[:}]/;
    const holders = Object.entries(services)
      .filter(([, s]) => Object.values(s.environment ?? {}).some((v) => rootSecrets.test(String(v))))
      .map(([name]) => name);
    expect(holders.sort()).toEqual(['minio', 'minio-setup', 'mongodb', 'mongodb-setup']);
  });

  it('takes every password from the environment, never a literal', () => {
    let checked = 0;
    for (const [name, s] of Object.entries(services)) {
      for (const [key, value] of Object.entries(s.environment ?? {})) {
        const secret = /PASSWORD|SECRET|API_KEY/.test(key) || /:\/\/[^/@]+@/.test(String(value));
        if (!secret) continue;
        checked++;
        expect([name, key, String(value)]).toEqual([name, key, expect.stringContaining('${')]);
      }
    }
    expect(checked).toBeGreaterThan(10);
  });
});
