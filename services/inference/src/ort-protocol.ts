/** Messages between the inference service's main thread and its ONNX Runtime threads (ort-thread.ts). */

export interface SessionSettings {
  intraOpNumThreads: number;
  /** Whether ORT's intra-op threads spin while waiting for work: faster handoffs, but they burn a core. */
  allowSpinning: boolean;
}

/** What the main thread needs to know of a loaded model. */
export interface ModelInfo {
  inputName: string;
  outputName: string;
  /** The input's declared shape: a number per fixed dimension, a name (or '') per dynamic one. */
  inputShape: (number | string)[];
  /** The first (batch) dimension is dynamic, so several images can run in one call. */
  dynamicBatch: boolean;
}

export type ToThread =
  | { type: 'load'; id: number; handle: string; bytes: Uint8Array }
  | { type: 'unload'; id: number; handle: string }
  /** `inputs` are the images of one batch (each `itemDims` without the batch dimension), transferred. */
  | { type: 'run'; id: number; handle: string; inputs: Float32Array[]; itemDims: number[] }
  /** Test hook: the thread throws outside any request, as a bug in it would. */
  | { type: 'crash'; id: number };

/** One image's output, or why it has none. */
export type ItemResult = { ok: true; scores: Float32Array | Float64Array } | { ok: false; message: string };

export type FromThread =
  | { type: 'ready' }
  | { type: 'loaded'; id: number; info: ModelInfo }
  | { type: 'unloaded'; id: number }
  | {
      type: 'ran';
      id: number;
      results: ItemResult[];
      /** ONNX Runtime's own time for the batch (ms). */
      runMs: number;
      /**
       * Set when the images ran one by one because the batched run failed or its output was not
       * one row per image: the model's batch dimension is dynamic in name only.
       */
      batchRefused?: string;
    }
  | { type: 'failed'; id: number; message: string };
