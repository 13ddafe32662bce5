// The in-process ceiling of one inference worker: what its own preprocessing and its ONNX
// Runtime path (the worker-thread pool and micro-batcher the service runs) can do, with no
// broker, S3 or database in the way. Same generated model and images for every setting; each
// setting's scores are checked against a plain batch-1 run on the main thread.
//   npx tsx infra/tools/ceiling.ts --model resnet18|densenet121 [--images 40]
//     [--batches 1,4,8,16] [--threads 1x2,2x1] [--repeat 2] [--spin] [--seed 0]
// Prints img/s per setting (threads x intra-op threads, batch) and the best, and the p50
// latency of one image alone (preprocess + inference) at batch 1. Nothing here asserts a target.
import { availableParallelism, cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { inputShape, type InputSpec } from '@cxr/contracts';
import { buildCnnModel, renderXray, XRAY_SIZES, type CnnArchitecture, type CnnModel } from '@cxr/demo-model';
import { ConcurrencyLimit } from '../../services/inference/src/concurrency-limit';
import { libuvThreads } from '../../services/inference/src/config';
import { InferenceEngine, type EngineModel } from '../../services/inference/src/inference-engine';
import { OrtPool } from '../../services/inference/src/ort-pool';
import { preprocess } from '../../services/inference/src/preprocess';
import { percentile } from './measure';

export interface ThreadSetting {
  /** ONNX Runtime worker threads (INFERENCE_THREADS). */
  threads: number;
  /** Intra-op threads per session (INTRA_OP_THREADS). */
  intraOp: number;
}

export interface CeilingOptions {
  model: CnnArchitecture;
  /** Images pushed through each setting. */
  images: number;
  batchSizes?: number[];
  threadSettings?: ThreadSetting[];
  /** Different encoded images the run cycles through (the rest repeat them). Default min(images, 8). */
  distinctImages?: number;
  batchWaitMs?: number;
  /** Each throughput is measured this many times and the best kept: on a shared machine the least disturbed run is the ceiling. Default 2. */
  repeat?: number;
  /** ORT intra-op threads spin-wait between ops (the service turns it off). Default false. */
  allowSpinning?: boolean;
  seed?: number;
  /** Progress lines; the report itself is returned. */
  log?: (line: string) => void;
  /** The model and images to use (the end-to-end bench passes its own); built from `model` and `seed` otherwise. */
  inputs?: BenchInputs;
}

/** A generated model and X-ray-sized images: what the ceiling and the end-to-end bench both run. */
export interface BenchInputs {
  model: CnnModel;
  images: { bytes: Buffer; name: string; format: 'png' | 'jpeg' }[];
}

/** Builds the model with seeded weights and renders `distinct` X-rays: real sizes, 8- and 16-bit PNG and JPEG in turn. */
export async function prepareInputs(
  architecture: CnnArchitecture,
  options: { seed?: number; distinct?: number; log?: (line: string) => void } = {},
): Promise<BenchInputs> {
  const seed = options.seed ?? 0;
  const log = options.log ?? (() => undefined);
  const model = buildCnnModel(architecture, { seed });
  log(
    `built ${architecture}: ${(model.parameters / 1e6).toFixed(2)} M weights, ${(model.onnx.length / 1e6).toFixed(1)} MB`,
  );
  const kinds = [
    { format: 'png', bitDepth: 8 },
    { format: 'png', bitDepth: 16 },
    { format: 'jpeg', bitDepth: 8 },
  ] as const;
  const images: BenchInputs['images'] = [];
  for (let i = 0; i < (options.distinct ?? 8); i++) {
    const size = XRAY_SIZES[i % XRAY_SIZES.length]!;
    const kind = kinds[i % kinds.length]!;
    images.push({
      bytes: await renderXray({ ...size, ...kind, seed: seed * 1000 + i }),
      name: `${size.width}x${size.height} ${kind.format}${kind.format === 'png' ? kind.bitDepth : ''}`,
      format: kind.format,
    });
  }
  log(
    `rendered ${images.length} images (${(images.reduce((a, b) => a + b.bytes.length, 0) / 1e6).toFixed(1)} MB encoded)`,
  );
  return { model, images };
}

export interface CeilingRow extends ThreadSetting {
  batch: number;
  /** Decode + inference, overlapped as in the worker, with its prefetch window. */
  pipelineImgPerSec: number;
  /** The same images already decoded: the ORT path alone. */
  inferenceImgPerSec: number;
  meanBatch: number;
  maxAbsDiff: number;
  mismatches: number;
}

export interface LatencyRow extends ThreadSetting {
  p50Ms: number;
  preprocessP50Ms: number;
  inferenceP50Ms: number;
  count: number;
}

export interface CeilingReport {
  model: CnnArchitecture;
  parameters: number;
  inputSpec: InputSpec;
  images: number;
  distinct: string[];
  machine: string;
  preprocessConcurrency: number;
  preprocessImgPerSec: number;
  repeat: number;
  allowSpinning: boolean;
  rows: CeilingRow[];
  best: CeilingRow;
  latency: LatencyRow[];
  mismatches: number;
  /** The raw output of each distinct image at batch 1 on the main thread: what every run is checked against. */
  reference: Float32Array[];
  /** Decode + inference of one image alone: the best setting's p50. */
  singleMs: number;
}

/** A close match: ORT with other batch sizes and thread counts sums in other orders. */
export const TOLERANCE = { abs: 1e-4, rel: 1e-4 };

export async function runCeiling(options: CeilingOptions): Promise<CeilingReport> {
  const log = options.log ?? (() => undefined);
  const batchSizes = options.batchSizes ?? [1, 4, 8, 16];
  const cores = availableParallelism();
  const threadSettings = options.threadSettings ?? [
    { threads: 1, intraOp: cores },
    { threads: cores, intraOp: 1 },
  ];
  const count = options.images;
  const wantDistinct = Math.max(1, Math.min(count, options.distinctImages ?? 8));
  const batchWaitMs = options.batchWaitMs ?? 5;
  const repeat = Math.max(1, options.repeat ?? 2);
  // As the service: one libvips thread per decode, several decodes at once.
  sharp.concurrency(1);
  const preprocessConcurrency = Math.max(1, Math.min(cores, libuvThreads(process.env) - 1));

  const inputs =
    options.inputs ?? (await prepareInputs(options.model, { seed: options.seed ?? 0, distinct: wantDistinct, log }));
  const { model } = inputs;
  const spec: InputSpec = model.inputSpec;
  const itemDims = inputShape(spec, 1).slice(1);
  const encoded = inputs.images.map((image) => image.bytes);
  const distinct = inputs.images.map((image) => image.name);
  const distinctCount = encoded.length;
  const source = (i: number) => i % distinctCount;
  const decode = (i: number) => preprocess(encoded[source(i)]!, spec, false, 50_000_000);

  // Preprocessing alone, with the service's concurrency.
  const limit = new ConcurrencyLimit(preprocessConcurrency);
  const t0 = performance.now();
  const tensors = await Promise.all(Array.from({ length: count }, (_, i) => limit.run(() => decode(i))));
  const preprocessImgPerSec = count / ((performance.now() - t0) / 1000);

  // The reference: each distinct image alone, on the main thread, a plain session.
  const session = await ort.InferenceSession.create(model.onnx, {
    intraOpNumThreads: cores,
    graphOptimizationLevel: 'all',
  });
  const reference: Float32Array[] = [];
  for (let i = 0; i < distinctCount; i++) {
    const out = await session.run({
      [session.inputNames[0]!]: new ort.Tensor('float32', tensors[i]!.slice(), [1, ...itemDims]),
    });
    reference.push(Float32Array.from(out[session.outputNames[0]!]!.data as Float32Array));
  }
  await session.release();
  log(`reference: ${distinctCount} images at batch 1 on the main thread`);

  const compare = (i: number, scores: ArrayLike<number>, row: { maxAbsDiff: number; mismatches: number }) => {
    const ref = reference[source(i)]!;
    let bad = scores.length !== ref.length;
    for (let j = 0; j < ref.length && !bad; j++) {
      const diff = Math.abs(scores[j]! - ref[j]!);
      row.maxAbsDiff = Math.max(row.maxAbsDiff, diff);
      if (!(diff <= TOLERANCE.abs + TOLERANCE.rel * Math.abs(ref[j]!))) bad = true;
    }
    if (bad) row.mismatches += 1;
  };

  const rows: CeilingRow[] = [];
  const latency: LatencyRow[] = [];
  for (const setting of threadSettings) {
    const pool = await OrtPool.start({
      threads: setting.threads,
      intraOpThreads: setting.intraOp,
      allowSpinning: options.allowSpinning ?? false,
    });
    try {
      const info = await pool.load('ceiling', model.onnx);
      const loaded: EngineModel = { handle: 'ceiling', info };
      for (const batch of batchSizes) {
        const engine = new InferenceEngine(pool, { maxBatch: batch, batchWaitMs });
        // Warm-up, not counted: ORT sizes its buffers on the first runs of a shape.
        await Promise.all(
          Array.from({ length: batch }, (_, i) => engine.infer(loaded, tensors[i % count]!.slice(), itemDims)),
        );
        const row: CeilingRow = {
          ...setting,
          batch,
          pipelineImgPerSec: 0,
          inferenceImgPerSec: 0,
          meanBatch: 0,
          maxAbsDiff: 0,
          mismatches: 0,
        };
        // As the worker: at most PREFETCH images in flight (its default, 2 x batch x threads),
        // each decoded under the preprocessing limit, then handed to the engine.
        const window = 2 * batch * setting.threads;
        const measure = async (work: (i: number) => Promise<ArrayLike<number>>): Promise<number> => {
          let best = 0;
          for (let r = 0; r < repeat; r++) {
            let next = 0;
            const started = performance.now();
            await Promise.all(
              Array.from({ length: Math.min(window, count) }, async () => {
                while (next < count) {
                  const i = next++;
                  compare(i, await work(i), row);
                }
              }),
            );
            best = Math.max(best, count / ((performance.now() - started) / 1000));
          }
          return best;
        };
        const before = { ...engine.stats };
        row.pipelineImgPerSec = await measure(async (i) => {
          const tensor = await limit.run(() => decode(i));
          return (await engine.infer(loaded, tensor, itemDims)).scores;
        });
        row.inferenceImgPerSec = await measure(
          async (i) => (await engine.infer(loaded, tensors[i]!.slice(), itemDims)).scores,
        );
        const after = engine.stats;
        row.meanBatch = (after.images - before.images) / Math.max(1, after.batches - before.batches);
        rows.push(row);
        log(
          `${setting.threads}x${setting.intraOp} batch ${batch}: ${row.pipelineImgPerSec.toFixed(1)} img/s ` +
            `(inference alone ${row.inferenceImgPerSec.toFixed(1)}), mean batch ${row.meanBatch.toFixed(1)}, ` +
            `${row.mismatches} mismatches`,
        );
      }

      // One image at a time, batch 1: what a lone request waits for in the worker.
      const alone = new InferenceEngine(pool, { maxBatch: 1, batchWaitMs: 0 });
      const totals: number[] = [];
      const decodes: number[] = [];
      const runs: number[] = [];
      const n = Math.min(count, 20);
      const check = { maxAbsDiff: 0, mismatches: 0 };
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        const tensor = await decode(i);
        const t1 = performance.now();
        const { scores } = await alone.infer(loaded, tensor, itemDims);
        const t2 = performance.now();
        compare(i, scores, check);
        totals.push(t2 - t);
        decodes.push(t1 - t);
        runs.push(t2 - t1);
      }
      if (check.mismatches > 0)
        rows.push({ ...setting, batch: 1, pipelineImgPerSec: 0, inferenceImgPerSec: 0, meanBatch: 1, ...check });
      latency.push({
        ...setting,
        count: n,
        p50Ms: percentile(totals, 50),
        preprocessP50Ms: percentile(decodes, 50),
        inferenceP50Ms: percentile(runs, 50),
      });
    } finally {
      await pool.close();
    }
  }

  const best = rows.reduce((a, b) => (b.pipelineImgPerSec > a.pipelineImgPerSec ? b : a));
  return {
    model: options.model,
    parameters: model.parameters,
    inputSpec: spec,
    images: count,
    distinct,
    machine: `${cores} x ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}, onnxruntime-node ${ort.env.versions.common}, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
    preprocessConcurrency,
    preprocessImgPerSec,
    repeat,
    allowSpinning: options.allowSpinning ?? false,
    rows,
    best,
    latency,
    mismatches: rows.reduce((a, r) => a + r.mismatches, 0),
    reference,
    singleMs: Math.min(...latency.map((l) => l.p50Ms)),
  };
}

/** The report as the lines the CLI prints. */
export function formatCeiling(r: CeilingReport): string {
  const spec = `${r.inputSpec.channels}x${r.inputSpec.height}x${r.inputSpec.width}`;
  const lines = [
    `ceiling: ${r.model} (${(r.parameters / 1e6).toFixed(2)} M weights, input ${spec}, dynamic batch), ${r.images} images per setting`,
    `images: ${r.distinct.join(', ')} (cycled)`,
    `machine: ${r.machine}`,
    `each img/s the best of ${r.repeat} runs; ORT spin-waiting ${r.allowSpinning ? 'on' : 'off (as the service)'}`,
    `preprocessing alone: ${r.preprocessImgPerSec.toFixed(1)} img/s (${r.preprocessConcurrency} at once, sharp concurrency 1)`,
    '',
    'threads x intra-op | batch | img/s decode+infer | img/s infer only | mean batch | max |diff| | mismatches',
    ...r.rows.map(
      (row) =>
        `${`${row.threads} x ${row.intraOp}`.padEnd(18)} | ${String(row.batch).padStart(5)} | ` +
        `${row.pipelineImgPerSec.toFixed(1).padStart(17)} | ${row.inferenceImgPerSec.toFixed(1).padStart(16)} | ` +
        `${row.meanBatch.toFixed(1).padStart(10)} | ${row.maxAbsDiff.toExponential(1).padStart(10)} | ${row.mismatches}`,
    ),
    '',
    `best: ${r.best.threads} x ${r.best.intraOp}, batch ${r.best.batch}: ${r.best.pipelineImgPerSec.toFixed(1)} img/s decode+infer`,
    ...r.latency.map(
      (l) =>
        `one image alone at batch 1, ${l.threads} x ${l.intraOp}: p50 ${l.p50Ms.toFixed(0)} ms ` +
        `(preprocess ${l.preprocessP50Ms.toFixed(0)} ms, inference ${l.inferenceP50Ms.toFixed(0)} ms; ${l.count} images)`,
    ),
    `scores checked against batch 1 on the main thread: ${r.mismatches === 0 ? 'all match' : `${r.mismatches} MISMATCHES`} (|diff| <= ${TOLERANCE.abs} + ${TOLERANCE.rel} x |ref|)`,
  ];
  return lines.join('\n');
}

function parseThreads(value: string): ThreadSetting[] {
  return value.split(',').map((s) => {
    const m = /^(\d+)x(\d+)$/.exec(s.trim());
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new Error(`--threads takes THREADSxINTRAOP,... (got ${s})`);
    return { threads: Number(m[1]), intraOp: Number(m[2]) };
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'resnet18' },
      images: { type: 'string', default: '40' },
      batches: { type: 'string', default: '1,4,8,16' },
      threads: { type: 'string' },
      repeat: { type: 'string', default: '2' },
      spin: { type: 'boolean', default: false },
      seed: { type: 'string', default: '0' },
    },
  });
  if (values.model !== 'resnet18' && values.model !== 'densenet121') {
    throw new Error(`--model must be resnet18 or densenet121 (got ${values.model})`);
  }
  const images = Number(values.images);
  const batchSizes = values.batches.split(',').map(Number);
  if (!Number.isInteger(images) || images < 1) throw new Error('--images takes a whole number >= 1');
  if (batchSizes.some((b) => !Number.isInteger(b) || b < 1)) throw new Error('--batches takes whole numbers >= 1');
  const report = await runCeiling({
    model: values.model,
    images,
    batchSizes,
    threadSettings: values.threads ? parseThreads(values.threads) : undefined,
    repeat: Number(values.repeat) || 1,
    allowSpinning: values.spin,
    seed: Number(values.seed),
    log: (line) => console.error(`[ceiling] ${line}`),
  });
  console.log(formatCeiling(report));
  if (report.mismatches > 0) process.exitCode = 1;
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(`[ceiling] ${(error as Error).message}`);
    process.exit(1);
  });
}
