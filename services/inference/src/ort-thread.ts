/**
 * One ONNX Runtime thread of the inference service (see ort-pool.ts). It holds its own session
 * of every loaded model and handles one message at a time, in order, so a run never starts
 * before the load sent ahead of it has finished. onnxruntime-node's run is synchronous inside
 * a setImmediate: here it blocks only this thread, never the service's event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { FromThread, ItemResult, ModelInfo, SessionSettings, ToThread } from './ort-protocol';

interface Loaded {
  session: ort.InferenceSession;
  info: ModelInfo;
}

const port = parentPort;
if (!port) throw new Error('ort-thread.ts runs only as a worker thread');
const settings = workerData as SessionSettings;
const sessions = new Map<string, Loaded>();

function send(message: FromThread, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!.slice(0, 500);
}

async function load(handle: string, bytes: Uint8Array): Promise<ModelInfo> {
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: settings.intraOpNumThreads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    extra: { session: { intra_op: { allow_spinning: settings.allowSpinning ? '1' : '0' } } },
  });
  const input = session.inputMetadata[0];
  const shape = input && input.isTensor ? [...input.shape] : [];
  const info: ModelInfo = {
    inputName: session.inputNames[0]!,
    outputName: session.outputNames[0]!,
    inputShape: shape,
    dynamicBatch: shape.length > 0 && typeof shape[0] !== 'number',
  };
  sessions
    .get(handle)
    ?.session.release()
    .catch(() => undefined);
  sessions.set(handle, { session, info });
  return info;
}

/** The output as numbers, whatever its element type (int64 and the like are not scores, but classify says so). */
function numeric(data: ort.Tensor['data']): Float32Array | Float64Array {
  if (data instanceof Float32Array) return data;
  return Float64Array.from(data as ArrayLike<unknown>, (v) => Number(v));
}

async function runOnce(model: Loaded, batch: Float32Array, dims: number[]): Promise<ort.Tensor> {
  const out = await model.session.run({ [model.info.inputName]: new ort.Tensor('float32', batch, dims) });
  const tensor = out[model.info.outputName];
  if (!tensor) throw new Error(`the model produced no output named ${model.info.outputName}`);
  return tensor;
}

async function run(handle: string, inputs: Float32Array[], itemDims: number[]): Promise<FromThread> {
  const model = sessions.get(handle);
  if (!model) throw new Error(`model ${handle} is not loaded in this thread`);
  const count = inputs.length;
  const itemSize = itemDims.reduce((a, b) => a * b, 1);
  for (const input of inputs) {
    if (input.length !== itemSize) throw new Error(`an input has ${input.length} values, expected ${itemSize}`);
  }
  let batch = inputs[0]!;
  if (count > 1) {
    batch = new Float32Array(count * itemSize);
    inputs.forEach((input, i) => batch.set(input, i * itemSize));
  }
  const started = performance.now();
  let batchRefused: string | undefined;
  if (count === 1 || model.info.dynamicBatch) {
    try {
      const tensor = await runOnce(model, batch, [count, ...itemDims]);
      const data = numeric(tensor.data);
      if (count === 1 || (tensor.dims[0] === count && data.length % count === 0)) {
        const rowSize = data.length / count;
        // Own copies: small, and transferable whatever memory ONNX Runtime's output lives in.
        const results: ItemResult[] = inputs.map((_, i) => ({
          ok: true,
          scores: data.slice(i * rowSize, (i + 1) * rowSize),
        }));
        return { type: 'ran', id: 0, results, runMs: performance.now() - started };
      }
      batchRefused = `a batch of ${count} gave output dims [${tensor.dims.join(', ')}]`;
    } catch (error) {
      if (count === 1) {
        return { type: 'ran', id: 0, results: [{ ok: false, message: firstLine(error) }], runMs: 0 };
      }
      batchRefused = `a batch of ${count} failed: ${firstLine(error)}`;
    }
  }
  // Batching is not what this model does after all: each image alone, so each job gets its own answer.
  const results: ItemResult[] = [];
  for (let i = 0; i < count; i++) {
    try {
      const tensor = await runOnce(model, inputs[i]!, [1, ...itemDims]);
      results.push({ ok: true, scores: numeric(tensor.data).slice() });
    } catch (error) {
      results.push({ ok: false, message: firstLine(error) });
    }
  }
  return { type: 'ran', id: 0, results, runMs: performance.now() - started, batchRefused };
}

async function handle(message: ToThread): Promise<void> {
  try {
    switch (message.type) {
      case 'load':
        send({ type: 'loaded', id: message.id, info: await load(message.handle, message.bytes) });
        return;
      case 'unload': {
        const loaded = sessions.get(message.handle);
        sessions.delete(message.handle);
        await loaded?.session.release();
        send({ type: 'unloaded', id: message.id });
        return;
      }
      case 'run': {
        const reply = await run(message.handle, message.inputs, message.itemDims);
        if (reply.type === 'ran') {
          send(
            { ...reply, id: message.id },
            reply.results.flatMap((r) => (r.ok ? [r.scores.buffer as ArrayBuffer] : [])),
          );
        }
        return;
      }
      case 'crash':
        setImmediate(() => {
          throw new Error('ort-thread: crash requested');
        });
        return;
    }
  } catch (error) {
    send({ type: 'failed', id: message.id, message: firstLine(error) });
  }
}

let queue: Promise<void> = Promise.resolve();
port.on('message', (message: ToThread) => {
  queue = queue.then(() => handle(message));
});
send({ type: 'ready' });
