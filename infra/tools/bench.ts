// Latency of one classification on an idle system: submit an image, then poll until the result
// can be read (what a client sees end to end). Runs against the stack `./cxr up` started.
//   npm run bench -- [--count 50] [--concurrency 1]
// Prints every figure it measured; nothing here asserts a target.
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { Client, imageForm } from '@cxr/client';
import { renderSample, type SampleKind } from '@cxr/demo-model';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} takes a positive integer`);
  return value;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function main(): Promise<void> {
  const count = arg('count', 50);
  const concurrency = arg('concurrency', 1);
  const state = resolve(process.env.CXR_STATE_DIR ?? '.state/dev', 'demo.json');
  const { apiKey, datasetId } = JSON.parse(readFileSync(state, 'utf8')) as { apiKey: string; datasetId: string };
  const client = new Client(process.env.GATEWAY_URL ?? 'http://127.0.0.1:8080', apiKey);
  const kinds: SampleKind[] = ['dark', 'bright', 'striped'];
  const images = await Promise.all(kinds.map((k, i) => renderSample(k, { width: 512, height: 512, seed: 100 + i })));

  // One warm-up request, so loading the model into the worker is not counted as idle latency.
  const warm = await client.post(`/v1/datasets/${datasetId}/classifications`, imageForm(images[0]!));
  await client.get(`/v1/classifications/${warm.body.id as string}?wait=30`);

  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  async function worker(): Promise<void> {
    while (next < count) {
      const i = next++;
      const t0 = performance.now();
      const submitted = await client.post(`/v1/datasets/${datasetId}/classifications`, imageForm(images[i % 3]!));
      if (submitted.status !== 202) throw new Error(`submit: ${submitted.status} ${JSON.stringify(submitted.body)}`);
      const view = await client.get<{ state: string }>(`/v1/classifications/${submitted.body.id as string}?wait=30`);
      if (view.body.state !== 'classified') throw new Error(`request ended ${view.body.state}`);
      latencies.push(performance.now() - t0);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const wall = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const mean = latencies.reduce((a, b) => a + b, 0) / latencies.length;
  console.log(
    `classification latency, submit → result readable (${count} requests, concurrency ${concurrency}, 512x512 PNG, demo model)`,
  );
  console.log(`  machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}`);
  console.log(
    `  min ${latencies[0]!.toFixed(1)} ms  p50 ${percentile(latencies, 50).toFixed(1)} ms  p95 ${percentile(latencies, 95).toFixed(1)} ms  ` +
      `max ${latencies[latencies.length - 1]!.toFixed(1)} ms  mean ${mean.toFixed(1)} ms`,
  );
  console.log(`  throughput ${(count / wall).toFixed(1)} classifications/s over ${wall.toFixed(1)} s`);
}

main().catch((error: unknown) => {
  console.error(`[bench] ${(error as Error).message}`);
  process.exit(1);
});
