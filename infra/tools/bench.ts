// The throughput bench, in one run on one machine: (a) the in-process ceiling (the worker's own
// preprocessing and ONNX Runtime path, no broker, S3 or database), (b) the running system
// (`./cxr up`) end to end at each concurrency with each number of inference replicas, (c) the
// ratios of (b) to (a), (d) CPU seconds per request of every server and service and their peak
// RSS, (e) the worker's stages, (f) database operations per request. The model (ResNet-18- or
// DenseNet-121-shaped, seeded weights) and the X-ray-sized PNG and JPEG images are generated; every
// score the system returns is checked against the ceiling's batch-1 reference.
//   npm run bench -- [--model resnet18|densenet121] [--count 160] [--concurrency 1,16]
//                    [--replicas 1,2] [--stored N] [--images 8] [--ceiling-images 40] [--ceiling-batches 1,8]
//                    [--peer celery]
// `--peer celery` also measures a plain Python peer (FastAPI -> S3 -> Celery -> Redis, see
// infra/peer/celery/peer.py) on the same model, images and S3 server, at the same concurrencies.
// `--stored N` first fills the database with finished requests up to N, so cost against history
// is one flag. Prints every figure it measured; nothing here asserts a target.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { basename, join, resolve } from 'node:path';
import { Client, modelForm } from '@cxr/client';
import { connectDatabase, Types } from '@cxr/db';
import { ObjectStore } from '@cxr/storage';
import type { CnnArchitecture } from '@cxr/demo-model';
import { classify } from '../../services/inference/src/scores';
import { formatCeiling, prepareInputs, runCeiling, TOLERANCE, type BenchInputs } from './ceiling';
import { readEnvFile } from './env-file';
import { fillHistory, storedRequests } from './history';
import { multipartFile, postBytes } from './http-upload';
import { percentile, serverTimings, stageMedians } from './measure';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

function positive(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} takes a whole number (got ${value})`);
  return n;
}

const CLK_TCK = 100;

/** Every process now: its parent and its CPU ticks so far (utime + stime). */
function processTable(): Map<number, { ppid: number; ticks: number }> {
  const table = new Map<number, { ppid: number; ticks: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      table.set(Number(entry), { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // ended while we looked
    }
  }
  return table;
}

/** A process and all its descendants (a supervisor and its service, a postmaster and its backends). */
function tree(rootPid: number, table = processTable()): number[] {
  const out: number[] = [];
  const queue = [rootPid];
  while (queue.length) {
    const pid = queue.pop()!;
    out.push(pid);
    for (const [child, p] of table) if (p.ppid === pid) queue.push(child);
  }
  return out;
}

function treeCpuSeconds(rootPid: number): number {
  const table = processTable();
  return tree(rootPid, table).reduce((sum, pid) => sum + (table.get(pid)?.ticks ?? 0), 0) / CLK_TCK;
}

/** Peak resident memory (VmHWM) of the largest process in a tree, in MiB: the service under its supervisor. */
function treePeakRssMiB(rootPid: number): number {
  let peak = 0;
  for (const pid of tree(rootPid)) {
    try {
      const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (hwm) peak = Math.max(peak, Number(hwm[1]) / 1024);
    } catch {
      // ended
    }
  }
  return peak;
}

/** The stack's processes by name, from their pid files. */
function stackProcesses(state: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const dir of [join(state, 'run'), join(state, 'services')]) {
    let files: string[] = [];
    try {
      files = readdirSync(dir).filter((f) => f.endsWith('.pid'));
    } catch {
      continue;
    }
    for (const file of files) {
      const pid = Number(readFileSync(join(dir, file), 'utf8').trim().split('\n')[0]);
      const name = basename(file, '.pid');
      // A supervisor's pid file and its child's: count the tree once, under the supervisor.
      // One tree once: a supervisor's pid file and its child's, or two names for one server.
      if (Number.isInteger(pid) && pid > 0 && !name.endsWith('.child') && ![...found.values()].includes(pid)) {
        found.set(name.replace(/\.supervisor$/, ''), pid);
      }
    }
  }
  // A server's wrapper and the server under it are one tree: keep the outermost.
  for (const [name, pid] of [...found]) {
    if ([...found].some(([other, root]) => other !== name && root !== pid && tree(root).includes(pid))) {
      found.delete(name);
    }
  }
  return found;
}

/** The bench's dataset and its model, made once per machine state and model bytes. */
async function ensureBenchModel(
  client: Client,
  state: string,
  architecture: CnnArchitecture,
  inputs: BenchInputs,
): Promise<{ datasetId: string; modelId: string }> {
  const path = join(state, `bench-${architecture}.json`);
  const sha256 = createHash('sha256').update(inputs.model.onnx).digest('hex');
  if (existsSync(path)) {
    const saved = JSON.parse(readFileSync(path, 'utf8')) as { datasetId: string; modelId: string; sha256: string };
    const model = await client.get<{ status: string }>(`/v1/models/${saved.modelId}`);
    if (saved.sha256 === sha256 && model.status === 200 && model.body.status === 'active') return saved;
  }
  const dataset = await client.post<{ id: string }>('/v1/datasets', {
    name: `bench-${architecture}-${Date.now().toString(36)}`,
    display_name: `Throughput bench (${architecture}, seeded weights)`,
    description: 'Generated by npm run bench: random weights and synthetic X-rays, not medical data.',
    img_width: 224,
    img_height: 224,
    // The ceiling stretches to the input size; the system must do the same work.
    maintain_ratio: false,
  });
  if (dataset.status !== 201)
    throw new Error(`creating the bench dataset: ${dataset.status} ${JSON.stringify(dataset.body)}`);
  const model = await client.post<{ id: string }>(
    `/v1/datasets/${dataset.body.id}/models`,
    modelForm(inputs.model.onnx, inputs.model.labels, inputs.model.inputSpec, architecture),
  );
  if (model.status !== 201) throw new Error(`uploading ${architecture}: ${model.status} ${JSON.stringify(model.body)}`);
  const saved = { datasetId: dataset.body.id, modelId: model.body.id, sha256 };
  writeFileSync(path, JSON.stringify(saved));
  return saved;
}

interface LevelFigures {
  name: string;
  /** Whether its scores must match the ceiling's reference (the Celery peer decodes with Pillow, not libvips). */
  exact: boolean;
  concurrency: number;
  imgPerSec: number;
  p50Ms: number;
  p95Ms: number;
  mismatches: number;
  /** The largest difference of one score from the ceiling's reference. */
  maxDelta: number;
}

interface Submitted {
  ms: number;
  /** When the submission was answered 202, for a target that answers before it classifies. */
  acceptedMs: number | null;
  /** The gateway's stages of the accepted submission (its Server-Timing header), for the system. */
  gatewayStages: Map<string, number> | null;
  scores: { label: string; score: number }[];
  timings: Record<string, number>;
}

/** What measureLevel drives: the system, or the Celery peer. */
interface Target {
  name: string;
  exact: boolean;
  submit: (i: number) => Promise<Submitted>;
  /** Its processes by name, for CPU and RSS. */
  processes: () => Map<string, number>;
  /** Database operations so far, by service and command, where the target counts them. */
  operations?: () => Promise<Record<string, number>>;
}

interface ScoredView {
  state: string;
  timings: Record<string, number>;
  result: { scores: { label: string; score: number }[] } | null;
  errors: unknown[];
}

async function main(): Promise<void> {
  const architecture = arg('model', 'resnet18');
  if (architecture !== 'resnet18' && architecture !== 'densenet121')
    throw new Error(`--model takes resnet18 or densenet121 (got ${architecture})`);
  const count = positive('count', arg('count', '160'));
  const levels = arg('concurrency', '1,16')
    .split(',')
    .map((c) => positive('concurrency', c));
  const replicaLevels = arg('replicas', '1,2')
    .split(',')
    .map((c) => positive('replicas', c));
  const distinct = positive('images', arg('images', '8'));
  const stored = arg('stored', '');
  const peer = arg('peer', '');
  if (peer !== '' && peer !== 'celery') throw new Error(`--peer takes celery (got ${peer})`);
  const root = resolve(__dirname, '../..');
  const state = resolve(process.env.CXR_STATE_DIR ?? join(root, '.state/dev'));
  const env = { ...readEnvFile(join(state, 'stack.env')), ...readEnvFile(join(state, 'app-secrets.env')) };
  const { apiKey } = JSON.parse(readFileSync(join(state, 'demo.json'), 'utf8')) as { apiKey: string };
  const gatewayUrl = process.env.GATEWAY_URL ?? 'http://127.0.0.1:8080';
  const client = new Client(gatewayUrl, apiKey);
  const admin = new Client(gatewayUrl, env.ADMIN_API_KEY);
  const resultsStats = process.env.RESULTS_STATS_URL ?? 'http://127.0.0.1:8082/stats';
  const log = (line: string) => console.error(`[bench] ${line}`);

  const inputs = await prepareInputs(architecture, { seed: 0, distinct, log });
  const target = await ensureBenchModel(client, state, architecture, inputs);
  const db = await connectDatabase(env.MONGODB_URI!, 'cxr');
  try {
    if (stored !== '') {
      const dataset = await db.models.Dataset.findById(new Types.ObjectId(target.datasetId)).lean();
      const t0 = performance.now();
      const added = await fillHistory(
        db,
        { datasetId: dataset!._id, ownerId: dataset!.owner, modelId: new Types.ObjectId(target.modelId) },
        positive('stored', stored),
        (done) => done % 10_000 === 0 && log(`stored ${done} more finished requests`),
      );
      log(`added ${added} finished requests in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    const history = await storedRequests(db);

    // (a) The ceiling first, while the services idle.
    const ceiling = await runCeiling({
      model: architecture,
      images: positive('ceiling-images', arg('ceiling-images', '40')) || 1,
      batchSizes: arg('ceiling-batches', '1,8')
        .split(',')
        .map((b) => positive('ceiling-batches', b) || 1),
      inputs,
      log,
    });
    console.log(formatCeiling(ceiling));
    const expected = ceiling.reference.map((raw) => classify(inputs.model.labels, raw, inputs.model.inputSpec.output));

    console.log(
      `\nsystem: ${architecture} on ${history} stored requests; ${count} requests per level, ` +
        `the same ${distinct} images in turn (${(inputs.images.reduce((a, i) => a + i.bytes.length, 0) / distinct / 1e6).toFixed(1)} MB each on average)`,
    );
    const replicasBefore = readdirSync(join(state, 'services')).filter((f) =>
      /^inference-\d+\.supervisor\.pid$/.test(f),
    ).length;
    const figures: LevelFigures[] = [];
    let shedAndResent = 0;
    // Each image's multipart body encoded once: the client's own cost is not the system's.
    const agent = new http.Agent({ keepAlive: true });
    const bodies = inputs.images.map((image) =>
      multipartFile('image', image.bytes, `xray.${image.format === 'png' ? 'png' : 'jpg'}`, `image/${image.format}`),
    );
    const system: Target = {
      name: 'system',
      exact: true,
      processes: () => stackProcesses(state),
      operations: () => databaseOperations(admin, resultsStats),
      submit: async (i) => {
        const { body, contentType } = bodies[i % distinct]!;
        const t0 = performance.now();
        const send = () =>
          postBytes(
            `${gatewayUrl}/v1/datasets/${target.datasetId}/classifications`,
            body,
            { 'content-type': contentType, authorization: `Bearer ${apiKey}` },
            agent,
          );
        let submitted = await send();
        // Shed for load (answered before anything is stored): sent again after Retry-After, as a
        // client should; counted, and the wait is part of the request's time.
        while (submitted.status === 503 || submitted.status === 429) {
          shedAndResent += 1;
          await sleep(Number(submitted.headers['retry-after'] ?? 1) * 1000 * (1 + Math.random() / 2));
          submitted = await send();
        }
        if (submitted.status !== 202) throw new Error(`submit: ${submitted.status} ${submitted.text}`);
        const { id } = JSON.parse(submitted.text) as { id: string };
        const acceptedMs = performance.now() - t0;
        let view = await client.get<ScoredView>(`/v1/classifications/${id}?wait=60`);
        // A long backlog (many replicas scaled down, a slow model) can outlast one long-poll.
        while (view.body.state === 'queued' || view.body.state === 'assigned')
          view = await client.get<ScoredView>(`/v1/classifications/${id}?wait=60`);
        if (view.body.state !== 'classified') throw new Error(`request ended ${JSON.stringify(view.body)}`);
        return {
          ms: performance.now() - t0,
          acceptedMs,
          gatewayStages: serverTimings(submitted.headers['server-timing']),
          scores: view.body.result?.scores ?? [],
          timings: view.body.timings,
        };
      },
    };
    try {
      for (const replicas of replicaLevels) {
        scale(root, replicas);
        // Warm-up, not counted: every replica loads the model and sizes its buffers.
        for (let round = 0; round < 2; round++)
          await Promise.all(Array.from({ length: 8 * replicas }, (_, i) => system.submit(i)));
        for (const concurrency of levels) {
          figures.push(
            await measureLevel(
              { ...system, name: `system, ${replicas} replica${replicas > 1 ? 's' : ''}` },
              concurrency,
            ),
          );
        }
      }
    } finally {
      scale(root, Math.max(1, replicasBefore));
    }
    if (peer === 'celery') {
      // Its own bucket on the stack's S3 server, emptied and removed afterwards.
      const peerStore = ObjectStore.fromConfig({
        endpoint: env.S3_ENDPOINT,
        region: env.S3_REGION ?? 'us-east-1',
        accessKeyId: env.S3_ACCESS_KEY_ID ?? '',
        secretAccessKey: env.S3_SECRET_ACCESS_KEY ?? '',
        bucket: `cxr-bench-peer-${Date.now().toString(36)}`,
      });
      const modelDir = mkdtempSync(join(tmpdir(), 'cxr-peer-model-'));
      writeFileSync(join(modelDir, 'model.onnx'), inputs.model.onnx);
      writeFileSync(
        join(modelDir, 'spec.json'),
        JSON.stringify({ labels: inputs.model.labels, input_spec: inputs.model.inputSpec, keep_aspect_ratio: false }),
      );
      const peerScript = join(root, 'infra/peer/celery/run.sh');
      try {
        await peerStore.ensureBucket();
        log('starting the Celery peer (the first time installs redis-server and a Python venv)');
        const pids = execFileSync('bash', [peerScript, 'up'], {
          env: { ...process.env, ...env, S3_BUCKET: peerStore.bucket, PEER_MODEL_DIR: modelDir },
          stdio: ['ignore', 'pipe', 'inherit'],
        })
          .toString()
          .split('\n')
          .filter((line) => /^\w+ \d+$/.test(line))
          .map((line) => line.split(' ') as [string, string]);
        const peerUrl = `http://127.0.0.1:${process.env.PEER_HTTP_PORT ?? '8190'}/classify?wait=60`;
        const celery: Target = {
          name: 'celery peer',
          exact: false,
          // Its own processes, and the S3 server it shares with the system.
          processes: () =>
            new Map([
              ...pids.map(([name, pid]) => [`peer ${name}`, Number(pid)] as const),
              ...[...stackProcesses(state)].filter(([name]) => name === 's3'),
            ]),
          submit: async (i) => {
            const { body, contentType } = bodies[i % distinct]!;
            const t0 = performance.now();
            const answer = await postBytes(peerUrl, body, { 'content-type': contentType }, agent);
            if (answer.status !== 200) throw new Error(`peer: ${answer.status} ${answer.text}`);
            const { result } = JSON.parse(answer.text) as { result: { scores: { label: string; score: number }[] } };
            return {
              ms: performance.now() - t0,
              acceptedMs: null,
              gatewayStages: null,
              scores: result.scores,
              timings: {},
            };
          },
        };
        await Promise.all(Array.from({ length: 8 }, (_, i) => celery.submit(i)));
        for (const concurrency of levels) figures.push(await measureLevel(celery, concurrency));
      } finally {
        execFileSync('bash', [peerScript, 'down'], { stdio: ['ignore', 'ignore', 'inherit'] });
        rmSync(modelDir, { recursive: true, force: true });
        await peerStore.destroyBucket();
        peerStore.close();
      }
    }

    async function measureLevel(subject: Target, concurrency: number): Promise<LevelFigures> {
      const processes = subject.processes();
      const cpuBefore = new Map([...processes].map(([name, pid]) => [name, treeCpuSeconds(pid)]));
      const ownBefore = process.cpuUsage();
      const opsBefore = await subject.operations?.();
      const latencies: number[] = [];
      const acceptances: number[] = [];
      const gatewayStages: Map<string, number>[] = [];
      const stages = new Map<string, number[]>();
      let mismatches = 0;
      let maxDelta = 0;
      let next = 0;
      const started = performance.now();
      const worker = async () => {
        while (next < count) {
          const i = next++;
          const { ms, acceptedMs, gatewayStages: stagesOfSubmission, scores, timings } = await subject.submit(i);
          latencies.push(ms);
          if (acceptedMs !== null) acceptances.push(acceptedMs);
          if (stagesOfSubmission) gatewayStages.push(stagesOfSubmission);
          const want = expected[i % distinct]!.scores;
          if (!matches(scores, want)) mismatches += 1;
          maxDelta = Math.max(maxDelta, scoreDelta(scores, want));
          for (const [stage, value] of Object.entries(timings))
            stages.set(stage, [...(stages.get(stage) ?? []), value]);
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      const wall = (performance.now() - started) / 1000;
      const opsAfter = await subject.operations?.();
      const own = process.cpuUsage(ownBefore);
      latencies.sort((a, b) => a - b);
      const result: LevelFigures = {
        name: subject.name,
        exact: subject.exact,
        concurrency,
        imgPerSec: count / wall,
        p50Ms: percentile(latencies, 50),
        p95Ms: percentile(latencies, 95),
        mismatches,
        maxDelta,
      };
      console.log(`\n## ${subject.name}, ${concurrency} in flight`);
      console.log(
        `  throughput ${result.imgPerSec.toFixed(1)} img/s over ${wall.toFixed(1)} s ` +
          `(${(result.imgPerSec / ceiling.best.pipelineImgPerSec).toFixed(2)} x the ceiling); ` +
          `latency p50 ${result.p50Ms.toFixed(0)} ms (ceiling's one image alone ${ceiling.singleMs.toFixed(0)} ms), ` +
          `p95 ${result.p95Ms.toFixed(0)} ms, max ${latencies[latencies.length - 1]!.toFixed(0)} ms`,
      );
      console.log(`  scores against the ceiling's reference: ${scoreVerdict(result, count)}`);
      const cpu = [...processes]
        .map(([name, pid]) => [name, treeCpuSeconds(pid) - (cpuBefore.get(name) ?? 0)] as const)
        .filter(([, s]) => s > 0)
        .sort((a, b) => b[1] - a[1]);
      const total = cpu.reduce((a, [, s]) => a + s, 0);
      console.log(
        `  CPU per request: ${((total / count) * 1000).toFixed(1)} ms in all; ` +
          cpu
            .map(([name, s]) => `${name} ${((s / count) * 1000).toFixed(1)} ms (${((s / total) * 100).toFixed(0)} %)`)
            .join(', ') +
          `; and this bench client ${((own.user + own.system) / 1000 / count).toFixed(1)} ms`,
      );
      if (acceptances.length > 0) {
        const stageLine = [...stages]
          .map(([stage, values]) => `${stage.replace(/Ms$/, '')} ${percentile(values, 50).toFixed(1)}`)
          .join(', ');
        console.log(
          `  stages, p50 ms: submission answered 202 after ${percentile(acceptances, 50).toFixed(1)} ` +
            `(in the gateway: ${stageMedians(gatewayStages)}); in the worker ${stageLine} (batchSize in images)`,
        );
      }
      console.log(
        `  peak RSS since start: ${[...processes]
          .map(([name, pid]) => `${name} ${treePeakRssMiB(pid).toFixed(0)} MiB`)
          .join(', ')}`,
      );
      if (opsBefore && opsAfter) {
        const ops = Object.entries(opsAfter)
          .map(([k, v]) => [k, (v - (opsBefore[k] ?? 0)) / count] as const)
          .filter(([, v]) => v > 0);
        console.log(
          `  database operations per request (the ?wait reads included): ${ops.reduce((a, [, v]) => a + v, 0).toFixed(2)} = ` +
            ops.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', '),
        );
      }
      return result;
    }

    const best = ceiling.best.pipelineImgPerSec;
    console.log(`\n## Summary: ${architecture}, ${history} stored requests`);
    console.log(
      `ceiling (in process, ${ceiling.best.threads} x ${ceiling.best.intraOp} threads, batch ${ceiling.best.batch}): ` +
        `${best.toFixed(1)} img/s; one image alone ${ceiling.singleMs.toFixed(0)} ms`,
    );
    console.log(
      'target               | in flight | img/s | x ceiling | p50 ms | p50 - ceiling alone | p95 ms | scores',
    );
    for (const f of figures) {
      console.log(
        `${f.name.padEnd(20)} | ${String(f.concurrency).padStart(9)} | ${f.imgPerSec.toFixed(1).padStart(5)} | ` +
          `${(f.imgPerSec / best).toFixed(2).padStart(9)} | ${f.p50Ms.toFixed(0).padStart(6)} | ` +
          `${`${f.p50Ms - ceiling.singleMs >= 0 ? '+' : ''}${(f.p50Ms - ceiling.singleMs).toFixed(0)} ms`.padStart(19)} | ` +
          `${f.p95Ms.toFixed(0).padStart(6)} | ${scoreVerdict(f, count)}`,
      );
    }
    console.log(`submissions shed by the gateway and sent again after Retry-After: ${shedAndResent}`);
    if (figures.some((f) => f.exact && f.mismatches > 0) || ceiling.mismatches > 0) process.exitCode = 1;
  } finally {
    await db.close();
  }
}

/** Same labels in the same order, each score within the ceiling's tolerance. */
function matches(got: { label: string; score: number }[], want: { label: string; score: number }[]): boolean {
  return (
    got.length === want.length &&
    got.every(
      (g, i) =>
        g.label === want[i]!.label &&
        Math.abs(g.score - want[i]!.score) <= TOLERANCE.abs + TOLERANCE.rel * Math.abs(want[i]!.score),
    )
  );
}

/** The largest difference of a score from the reference's score for the same label. */
function scoreDelta(got: { label: string; score: number }[], want: { label: string; score: number }[]): number {
  const reference = new Map(want.map((w) => [w.label, w.score]));
  return Math.max(
    0,
    ...got.map((g) => Math.abs(g.score - (reference.get(g.label) ?? Number.NaN))).map((d) => (Number.isNaN(d) ? 1 : d)),
  );
}

function scoreVerdict(f: LevelFigures, count: number): string {
  if (f.exact) return f.mismatches === 0 ? `all ${count} match` : `${f.mismatches} MISMATCHES`;
  return `max difference ${f.maxDelta.toFixed(3)} (its own decoder)`;
}

/** `./cxr scale N`: starts or stops inference replicas and waits until the new ones answer /health. */
function scale(root: string, replicas: number): void {
  execFileSync('bash', [join(root, 'infra/run.sh'), 'scale', String(replicas)], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

/** The gateway's and the results service's database operations so far, by service and command. */
async function databaseOperations(admin: Client, resultsStats: string): Promise<Record<string, number>> {
  const gateway = await admin.get<{ databaseOperations: Record<string, number> }>('/stats');
  const results = (await (await fetch(resultsStats)).json()) as { databaseOperations: Record<string, number> };
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(gateway.body.databaseOperations ?? {})) out[`gateway.${k}`] = v;
  for (const [k, v] of Object.entries(results.databaseOperations ?? {})) out[`results.${k}`] = v;
  return out;
}

main().catch((error: unknown) => {
  console.error(`[bench] ${(error as Error).message}`);
  process.exit(1);
});
