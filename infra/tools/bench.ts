// End-to-end figures of the running system (`./cxr up`): submit an image, wait until its result
// can be read, as a client would; at each concurrency, the latency, the throughput, the CPU each
// server and service spent per request, and the database operations per request.
//   npm run bench -- [--count 200] [--concurrency 1,16] [--stored N]
// `--stored N` first fills the database with finished requests up to N, so cost against history
// is one flag. Prints every figure it measured; nothing here asserts a target.
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { Client, imageForm } from '@cxr/client';
import { connectDatabase, Types } from '@cxr/db';
import { renderSample, type SampleKind } from '@cxr/demo-model';
import { readEnvFile } from './env-file';
import { fillHistory, storedRequests } from './history';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

function positive(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} takes a whole number (got ${value})`);
  return n;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
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

async function main(): Promise<void> {
  const count = positive('count', arg('count', '200'));
  const levels = arg('concurrency', '1,16')
    .split(',')
    .map((c) => positive('concurrency', c));
  const stored = arg('stored', '');
  const state = resolve(process.env.CXR_STATE_DIR ?? '.state/dev');
  const env = { ...readEnvFile(join(state, 'stack.env')), ...readEnvFile(join(state, 'app-secrets.env')) };
  const { apiKey, datasetId } = JSON.parse(readFileSync(join(state, 'demo.json'), 'utf8')) as {
    apiKey: string;
    datasetId: string;
  };
  const gatewayUrl = process.env.GATEWAY_URL ?? 'http://127.0.0.1:8080';
  const client = new Client(gatewayUrl, apiKey);
  const admin = new Client(gatewayUrl, env.ADMIN_API_KEY);
  const resultsStats = process.env.RESULTS_STATS_URL ?? 'http://127.0.0.1:8082/stats';

  const db = await connectDatabase(env.MONGODB_URI!, 'cxr');
  try {
    if (stored !== '') {
      const dataset = await db.models.Dataset.findById(new Types.ObjectId(datasetId)).lean();
      if (!dataset?.default_model) throw new Error('the demo dataset has no model; run ./cxr up first');
      const t0 = performance.now();
      const added = await fillHistory(
        db,
        { datasetId: dataset._id, ownerId: dataset.owner, modelId: dataset.default_model },
        positive('stored', stored),
        (done) => done % 10_000 === 0 && console.log(`[bench] stored ${done} more finished requests`),
      );
      console.log(`[bench] added ${added} finished requests in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    const history = await storedRequests(db);
    const kinds: SampleKind[] = ['dark', 'bright', 'striped'];
    const images = await Promise.all(kinds.map((k, i) => renderSample(k, { width: 512, height: 512, seed: 100 + i })));

    console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}`);
    console.log(`stored requests before the run: ${history}; 512×512 PNG, demo model; ${count} requests per level`);
    // Warm-up: the worker loads the model once; not counted.
    for (let i = 0; i < 3; i++) {
      const warm = await client.post(`/v1/datasets/${datasetId}/classifications`, imageForm(images[i]!));
      await client.get(`/v1/classifications/${warm.body.id as string}?wait=30`);
    }

    for (const concurrency of levels) {
      const processes = stackProcesses(state);
      const cpuBefore = new Map([...processes].map(([name, pid]) => [name, treeCpuSeconds(pid)]));
      const opsBefore = await databaseOperations(admin, resultsStats);
      const latencies: number[] = [];
      const stages = new Map<string, number[]>();
      let next = 0;
      const started = performance.now();
      const worker = async () => {
        while (next < count) {
          const i = next++;
          const t0 = performance.now();
          const submitted = await client.post(`/v1/datasets/${datasetId}/classifications`, imageForm(images[i % 3]!));
          if (submitted.status !== 202)
            throw new Error(`submit: ${submitted.status} ${JSON.stringify(submitted.body)}`);
          const view = await client.get<{ state: string; timings: Record<string, number> }>(
            `/v1/classifications/${submitted.body.id as string}?wait=60`,
          );
          if (view.body.state !== 'classified') throw new Error(`request ended ${JSON.stringify(view.body)}`);
          latencies.push(performance.now() - t0);
          for (const [stage, ms] of Object.entries(view.body.timings))
            stages.set(stage, [...(stages.get(stage) ?? []), ms]);
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      const wall = (performance.now() - started) / 1000;
      const opsAfter = await databaseOperations(admin, resultsStats);
      latencies.sort((a, b) => a - b);
      console.log(`\n## ${concurrency} in flight`);
      console.log(
        `  throughput ${(count / wall).toFixed(1)} classifications/s over ${wall.toFixed(1)} s; ` +
          `latency p50 ${percentile(latencies, 50).toFixed(0)} ms, p95 ${percentile(latencies, 95).toFixed(0)} ms, ` +
          `max ${latencies[latencies.length - 1]!.toFixed(0)} ms`,
      );
      const cpu = [...processes]
        .map(([name, pid]) => [name, treeCpuSeconds(pid) - (cpuBefore.get(name) ?? 0)] as const)
        .filter(([, s]) => s > 0)
        .sort((a, b) => b[1] - a[1]);
      const total = cpu.reduce((a, [, s]) => a + s, 0);
      console.log(
        `  CPU per request: ${((total / count) * 1000).toFixed(1)} ms in all; ` +
          cpu
            .map(([name, s]) => `${name} ${((s / count) * 1000).toFixed(1)} ms (${((s / total) * 100).toFixed(0)} %)`)
            .join(', '),
      );
      const stageLine = [...stages]
        .map(([stage, values]) => {
          values.sort((a, b) => a - b);
          return `${stage.replace(/Ms$/, '')} ${percentile(values, 50).toFixed(1)}`;
        })
        .join(', ');
      console.log(`  worker stages, p50 ms: ${stageLine}`);
      console.log(
        `  peak RSS: ${[...processes]
          .map(([name, pid]) => `${name} ${treePeakRssMiB(pid).toFixed(0)} MiB`)
          .join(', ')}`,
      );
      const ops = Object.entries(opsAfter)
        .map(([k, v]) => [k, (v - (opsBefore[k] ?? 0)) / count] as const)
        .filter(([, v]) => v > 0);
      console.log(
        `  database operations per request (the ?wait reads included): ${ops.reduce((a, [, v]) => a + v, 0).toFixed(2)} = ` +
          ops.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', '),
      );
    }
  } finally {
    await db.close();
  }
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
