import { encodeModel, TensorDataType, type Dim, type NodeDef, type TensorDef } from './onnx-writer';

/** How the inference service must turn an image into the model's input tensor. */
export interface ModelInputSpec {
  layout: 'NCHW' | 'NHWC';
  channels: 1 | 3;
  width: number;
  height: number;
  /** Per channel, in the 0..1 pixel scale: x = (p / 255 - mean[c]) / std[c]. */
  mean: number[];
  std: number[];
  output: 'probabilities' | 'logits';
}

export interface DemoModelOptions {
  /** Declare the batch dimension as 1 instead of the symbolic "N". */
  fixedBatch?: boolean;
  /** 'probabilities' (default) ends with Softmax; 'logits' omits it. */
  output?: 'probabilities' | 'logits';
  /** Labels to report; the graph always has 3 outputs, so a different length models a mismatched model. */
  labels?: string[];
  layout?: 'NCHW' | 'NHWC';
  channels?: 1 | 3;
  /** Input size (default 64x64); the network is size-agnostic thanks to global pooling. */
  width?: number;
  height?: number;
}

export interface DemoModel {
  onnx: Buffer;
  labels: string[];
  inputSpec: ModelInputSpec;
}

export const DEMO_LABELS = ['dark', 'bright', 'striped'] as const;
export type DemoLabel = (typeof DEMO_LABELS)[number];
export const DEMO_INPUT_NAME = 'image';
export const DEMO_OUTPUT_NAME = 'scores';

/**
 * Classifier weights. After Conv -> Relu -> GlobalAveragePool the three features are
 *   B  = mean brightness (0..1),
 *   E+ = mean rising horizontal gradient, E- = mean falling horizontal gradient,
 * with E = E+ + E- being roughly 2 * contrast / period for vertical bars (about 0.15 for the
 * striped samples at 64 px, below 0.02 for smooth or noisy images).
 * Rows are [B, E+, E-] weights per class, in DEMO_LABELS order.
 */
export const DEMO_GEMM_WEIGHTS: readonly (readonly [number, number, number])[] = [
  // dark: 10 * (0.5 - B), pushed down by edge energy so stripes on a dim base do not count as dark
  [-10, -20, -20],
  // bright: 10 * (B - 0.5), same edge penalty
  [10, -20, -20],
  // striped: 40 * (E - 0.05); 0.05 sits well between noise/anatomy edges and real bars
  [0, 40, 40],
];
export const DEMO_GEMM_BIAS: readonly number[] = [5, -5, -2];

/** 3x3 horizontal Sobel kernel scaled by 1/8 so a ramp of slope s per pixel yields s. */
const SOBEL_X = [-1, 0, 1, -2, 0, 2, -1, 0, 1].map((v) => v / 8);

function convWeights(channels: number): Float32Array {
  const kernels = [new Array<number>(9).fill(1 / 9), SOBEL_X, SOBEL_X.map((v) => -v)];
  const w = new Float32Array(kernels.length * channels * 9);
  kernels.forEach((k, o) => {
    for (let c = 0; c < channels; c++) {
      // Split evenly across channels, so a grey RGB image gives the same features as grayscale.
      k.forEach((v, i) => (w[(o * channels + c) * 9 + i] = v / channels));
    }
  });
  return w;
}

/**
 * Builds a tiny hand-weighted CNN that separates three synthetic image classes
 * ("dark", "bright", "striped"; see renderSample). This is a synthetic demo for exercising the
 * pipeline end to end - it is NOT a medical model and says nothing about real chest X-rays.
 *
 * Graph: [Transpose if NHWC] -> Conv(3 filters 3x3, no padding) -> Relu -> GlobalAveragePool
 *        -> Flatten -> Gemm(3 logits) -> [Softmax]. Input "image" (float32), output "scores" [N, 3].
 */
export function buildDemoModel(options: DemoModelOptions = {}): DemoModel {
  const layout = options.layout ?? 'NCHW';
  const channels = options.channels ?? 1;
  const output = options.output ?? 'probabilities';
  const width = options.width ?? 64;
  const height = options.height ?? 64;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 3 || height < 3) {
    throw new RangeError(`input size must be integers >= 3, got ${width}x${height}`);
  }
  const batch: Dim = options.fixedBatch ? 1 : 'N';
  const inputShape: Dim[] = layout === 'NCHW' ? [batch, channels, height, width] : [batch, height, width, channels];

  const nodes: NodeDef[] = [];
  let convInput = DEMO_INPUT_NAME;
  if (layout === 'NHWC') {
    nodes.push({
      opType: 'Transpose',
      name: 'to_nchw',
      inputs: [DEMO_INPUT_NAME],
      outputs: ['image_nchw'],
      attributes: [{ name: 'perm', type: 'ints', value: [0, 3, 1, 2] }],
    });
    convInput = 'image_nchw';
  }
  const gemmOut = output === 'logits' ? DEMO_OUTPUT_NAME : 'logits';
  nodes.push(
    {
      opType: 'Conv',
      name: 'features',
      inputs: [convInput, 'conv_w', 'conv_b'],
      outputs: ['conv'],
      attributes: [
        { name: 'kernel_shape', type: 'ints', value: [3, 3] },
        // No padding: zero padding would add fake edges at the borders of bright images.
        { name: 'pads', type: 'ints', value: [0, 0, 0, 0] },
        { name: 'strides', type: 'ints', value: [1, 1] },
      ],
    },
    { opType: 'Relu', name: 'relu', inputs: ['conv'], outputs: ['relu'] },
    { opType: 'GlobalAveragePool', name: 'pool', inputs: ['relu'], outputs: ['pooled'] },
    {
      opType: 'Flatten',
      name: 'flatten',
      inputs: ['pooled'],
      outputs: ['flat'],
      attributes: [{ name: 'axis', type: 'int', value: 1 }],
    },
    {
      opType: 'Gemm',
      name: 'classifier',
      inputs: ['flat', 'gemm_w', 'gemm_b'],
      outputs: [gemmOut],
      attributes: [{ name: 'transB', type: 'int', value: 1 }],
    },
  );
  if (output === 'probabilities') {
    nodes.push({
      opType: 'Softmax',
      name: 'softmax',
      inputs: [gemmOut],
      outputs: [DEMO_OUTPUT_NAME],
      attributes: [{ name: 'axis', type: 'int', value: 1 }],
    });
  }

  const initializers: TensorDef[] = [
    { name: 'conv_w', dataType: 'float', dims: [3, channels, 3, 3], data: convWeights(channels) },
    { name: 'conv_b', dataType: 'float', dims: [3], data: [0, 0, 0] },
    { name: 'gemm_w', dataType: 'float', dims: [3, 3], data: DEMO_GEMM_WEIGHTS.flat() },
    { name: 'gemm_b', dataType: 'float', dims: [3], data: DEMO_GEMM_BIAS },
  ];

  const onnx = encodeModel({
    irVersion: 8,
    opsetImports: [{ domain: '', version: 13 }],
    producerName: 'cxr-classify-demo-model',
    producerVersion: '0.1.0',
    docString: 'Synthetic demo classifier (dark / bright / striped). Not a medical model.',
    graph: {
      name: 'demo_classifier',
      nodes,
      initializers,
      inputs: [{ name: DEMO_INPUT_NAME, elemType: TensorDataType.FLOAT, shape: inputShape }],
      outputs: [{ name: DEMO_OUTPUT_NAME, elemType: TensorDataType.FLOAT, shape: [batch, DEMO_LABELS.length] }],
    },
  });

  return {
    onnx,
    labels: options.labels ? [...options.labels] : [...DEMO_LABELS],
    inputSpec: {
      layout,
      channels,
      width,
      height,
      mean: new Array<number>(channels).fill(0),
      std: new Array<number>(channels).fill(1),
      output,
    },
  };
}
