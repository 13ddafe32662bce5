import type { ModelInputSpec } from './demo-classifier';
import { encodeModel, TensorDataType, type AttributeDef, type Dim, type NodeDef, type TensorDef } from './onnx-writer';
import { mulberry32 } from './samples';

/**
 * ONNX classifiers shaped like torchvision's ResNet-18 and DenseNet-121, with seeded random
 * weights, for measuring throughput and latency on graphs of a realistic size and kind. They
 * are NOT trained: their scores mean nothing about any image.
 *
 * The graphs are written the way a framework export writes them (Conv without bias, then
 * BatchNormalization, then Relu; MaxPool, AveragePool, GlobalAveragePool, Flatten, Gemm with
 * transB), so ONNX Runtime applies the same fusions (Conv+BN, Conv+Relu) as on a real export.
 */
export type CnnArchitecture = 'resnet18' | 'densenet121';

export interface CnnModelOptions {
  /** Seed of the weights; the same seed gives the same bytes. Default 0. */
  seed?: number;
  /** Default: 3 (ImageNet normalisation) for resnet18, 1 for densenet121 (as CXR DenseNets often are). */
  channels?: 1 | 3;
  /** Input size, default 224 x 224. At least 32: five stride-2 stages must leave a pixel. */
  width?: number;
  height?: number;
  /** One output per label. Default CNN_DEFAULT_LABELS (14). */
  labels?: string[];
  /** 'logits' (default, as an export of the bare network) or 'probabilities' (ends with Softmax). */
  output?: 'probabilities' | 'logits';
  /** Declare the batch dimension as 1 instead of the symbolic "N". */
  fixedBatch?: boolean;
}

export interface CnnModel {
  architecture: CnnArchitecture;
  onnx: Buffer;
  labels: string[];
  inputSpec: ModelInputSpec;
  /** Number of weights (initializer values), for the record. */
  parameters: number;
  /** Nodes per operator type, for the record (and to check the graph is the one described). */
  operators: Record<string, number>;
}

export const CNN_INPUT_NAME = 'input';
export const CNN_OUTPUT_NAME = 'output';
/** Neutral names: the weights are random, so no finding may be read into a score. */
export const CNN_DEFAULT_LABELS: readonly string[] = Array.from({ length: 14 }, (_, i) => `class-${i + 1}`);

/** Standard normal samples from a seeded uniform source (Box–Muller, both outputs used). */
export function gaussianSource(seed: number): () => number {
  const uniform = mulberry32(seed);
  const { sqrt, log, cos, sin, PI } = Math; // locals: see mulberry32
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const u = 1 - uniform(); // (0, 1]: log is finite
    const v = uniform();
    const r = sqrt(-2 * log(u));
    spare = r * sin(2 * PI * v);
    return r * cos(2 * PI * v);
  };
}

/** Appends nodes and initializers with unique names, drawing every weight from one seeded source. */
class GraphBuilder {
  readonly nodes: NodeDef[] = [];
  readonly initializers: TensorDef[] = [];
  parameters = 0;
  private readonly normal: () => number;

  constructor(seed: number) {
    this.normal = gaussianSource(seed);
  }

  private weights(name: string, dims: number[], value: (normal: () => number) => number): string {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = value(this.normal);
    this.initializers.push({ name, dataType: 'float', dims, data });
    this.parameters += data.length;
    return name;
  }

  private node(opType: string, name: string, inputs: string[], attributes: AttributeDef[] = []): string {
    const output = `${name}_out`;
    this.nodes.push({ opType, name, inputs, outputs: [output], attributes });
    return output;
  }

  /** Convolution without bias (a BatchNormalization follows), He-normal weights: std sqrt(2 / fan_in). */
  conv(name: string, x: string, inC: number, outC: number, kernel: number, stride: number, pad: number): string {
    const std = Math.sqrt(2 / (inC * kernel * kernel));
    const w = this.weights(`${name}.weight`, [outC, inC, kernel, kernel], (n) => n() * std);
    return this.node(
      'Conv',
      name,
      [x, w],
      [
        { name: 'dilations', type: 'ints', value: [1, 1] },
        { name: 'group', type: 'int', value: 1 },
        { name: 'kernel_shape', type: 'ints', value: [kernel, kernel] },
        { name: 'pads', type: 'ints', value: [pad, pad, pad, pad] },
        { name: 'strides', type: 'ints', value: [stride, stride] },
      ],
    );
  }

  /**
   * Inference-mode BatchNormalization with statistics near identity and some spread, as a trained
   * network's look: the output keeps about unit variance (times `gamma`), so deep stacks stay finite
   * and the logits are neither all equal nor saturated.
   */
  batchNorm(name: string, x: string, channels: number, gamma = 1): string {
    const scale = this.weights(`${name}.weight`, [channels], (n) => gamma * (1 + 0.1 * n()));
    const bias = this.weights(`${name}.bias`, [channels], (n) => 0.05 * n());
    const mean = this.weights(`${name}.running_mean`, [channels], (n) => 0.05 * n());
    const variance = this.weights(`${name}.running_var`, [channels], (n) => 1 + 0.1 * Math.abs(n()));
    return this.node(
      'BatchNormalization',
      name,
      [x, scale, bias, mean, variance],
      [
        { name: 'epsilon', type: 'float', value: 1e-5 },
        { name: 'momentum', type: 'float', value: 0.9 },
      ],
    );
  }

  relu(name: string, x: string): string {
    return this.node('Relu', name, [x]);
  }

  maxPool(name: string, x: string): string {
    return this.node(
      'MaxPool',
      name,
      [x],
      [
        { name: 'kernel_shape', type: 'ints', value: [3, 3] },
        { name: 'pads', type: 'ints', value: [1, 1, 1, 1] },
        { name: 'strides', type: 'ints', value: [2, 2] },
      ],
    );
  }

  avgPool(name: string, x: string): string {
    return this.node(
      'AveragePool',
      name,
      [x],
      [
        { name: 'kernel_shape', type: 'ints', value: [2, 2] },
        { name: 'pads', type: 'ints', value: [0, 0, 0, 0] },
        { name: 'strides', type: 'ints', value: [2, 2] },
      ],
    );
  }

  add(name: string, a: string, b: string): string {
    return this.node('Add', name, [a, b]);
  }

  concat(name: string, xs: string[]): string {
    return this.node('Concat', name, [...xs], [{ name: 'axis', type: 'int', value: 1 }]);
  }

  /** GlobalAveragePool, Flatten, then a linear layer with weights N(0, 1 / fan_in), as PyTorch exports it. */
  head(x: string, features: number, classes: number, output: string, softmax: boolean): void {
    const pooled = this.node('GlobalAveragePool', 'avgpool', [x]);
    const flat = this.node('Flatten', 'flatten', [pooled], [{ name: 'axis', type: 'int', value: 1 }]);
    const std = Math.sqrt(1 / features);
    const w = this.weights('fc.weight', [classes, features], (n) => n() * std);
    const b = this.weights('fc.bias', [classes], (n) => 0.01 * n());
    const gemm = [flat, w, b];
    const gemmAttributes: AttributeDef[] = [
      { name: 'alpha', type: 'float', value: 1 },
      { name: 'beta', type: 'float', value: 1 },
      { name: 'transB', type: 'int', value: 1 },
    ];
    if (!softmax) {
      this.nodes.push({ opType: 'Gemm', name: 'fc', inputs: gemm, outputs: [output], attributes: gemmAttributes });
      return;
    }
    const logits = this.node('Gemm', 'fc', gemm, gemmAttributes);
    this.nodes.push({
      opType: 'Softmax',
      name: 'softmax',
      inputs: [logits],
      outputs: [output],
      attributes: [{ name: 'axis', type: 'int', value: 1 }],
    });
  }
}

/** The stem of both networks: 7x7 stride-2 conv to 64 channels, BN, Relu, 3x3 stride-2 max pooling. */
function stem(g: GraphBuilder, x: string, channels: number, names: [string, string, string, string]): string {
  const [conv, bn, relu, pool] = names;
  return g.maxPool(pool, g.relu(relu, g.batchNorm(bn, g.conv(conv, x, channels, 64, 7, 2, 3), 64)));
}

/** torchvision resnet18: BasicBlocks [2, 2, 2, 2] of 64, 128, 256, 512 channels. */
function resnet18(g: GraphBuilder, input: string, channels: number): { x: string; features: number } {
  let x = stem(g, input, channels, ['conv1', 'bn1', 'relu', 'maxpool']);
  let inC = 64;
  [64, 128, 256, 512].forEach((outC, stage) => {
    for (let block = 0; block < 2; block++) {
      const name = `layer${stage + 1}.${block}`;
      const stride = stage > 0 && block === 0 ? 2 : 1;
      let out = g.conv(`${name}.conv1`, x, inC, outC, 3, stride, 1);
      out = g.relu(`${name}.relu1`, g.batchNorm(`${name}.bn1`, out, outC));
      out = g.conv(`${name}.conv2`, out, outC, outC, 3, 1, 1);
      // The residual branch's last BN starts small, so each Add grows the variance by 1.25, not 2.
      out = g.batchNorm(`${name}.bn2`, out, outC, 0.5);
      let identity = x;
      if (stride !== 1 || inC !== outC) {
        identity = g.conv(`${name}.downsample.0`, x, inC, outC, 1, stride, 0);
        identity = g.batchNorm(`${name}.downsample.1`, identity, outC);
      }
      x = g.relu(`${name}.relu2`, g.add(`${name}.add`, out, identity));
      inC = outC;
    }
  });
  return { x, features: 512 };
}

/** torchvision densenet121: growth 32, blocks [6, 12, 24, 16], bottleneck 4 x growth, compression 0.5. */
function densenet121(g: GraphBuilder, input: string, channels: number): { x: string; features: number } {
  const growth = 32;
  const bottleneck = 4 * growth;
  let x = stem(g, input, channels, ['features.conv0', 'features.norm0', 'features.relu0', 'features.pool0']);
  let c = 64;
  [6, 12, 24, 16].forEach((layers, blockIndex) => {
    const block = `features.denseblock${blockIndex + 1}`;
    const parts = [x];
    for (let l = 1; l <= layers; l++) {
      const name = `${block}.denselayer${l}`;
      // Each layer reads the concatenation of everything before it, as torch.cat(prev_features, 1) exports.
      const concatenated = parts.length === 1 ? parts[0]! : g.concat(`${name}.cat`, parts);
      const inC = c + (l - 1) * growth;
      let out = g.relu(`${name}.relu1`, g.batchNorm(`${name}.norm1`, concatenated, inC));
      out = g.conv(`${name}.conv1`, out, inC, bottleneck, 1, 1, 0);
      out = g.relu(`${name}.relu2`, g.batchNorm(`${name}.norm2`, out, bottleneck));
      parts.push(g.conv(`${name}.conv2`, out, bottleneck, growth, 3, 1, 1));
    }
    x = g.concat(`${block}.cat`, parts);
    c += layers * growth;
    if (blockIndex < 3) {
      const name = `features.transition${blockIndex + 1}`;
      const relu = g.relu(`${name}.relu`, g.batchNorm(`${name}.norm`, x, c));
      x = g.avgPool(`${name}.pool`, g.conv(`${name}.conv`, relu, c, c / 2, 1, 1, 0));
      c /= 2;
    }
  });
  x = g.relu('features.relu5', g.batchNorm('features.norm5', x, c));
  return { x, features: c };
}

/** Every value is produced once, and before it is read: the writer does not sort nodes, ONNX needs them in order. */
function checkTopologicalOrder(nodes: readonly NodeDef[], known: Iterable<string>): void {
  const defined = new Set(known);
  for (const node of nodes) {
    for (const input of node.inputs) {
      if (!defined.has(input)) throw new Error(`node ${node.name ?? node.opType} reads ${input} before it is defined`);
    }
    for (const output of node.outputs) {
      if (defined.has(output)) throw new Error(`${output} is defined twice (node ${node.name ?? node.opType})`);
      defined.add(output);
    }
  }
}

const IMAGENET = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

/** Builds a ResNet-18- or DenseNet-121-shaped classifier (NCHW float32 input, one output per label). */
export function buildCnnModel(architecture: CnnArchitecture, options: CnnModelOptions = {}): CnnModel {
  const channels = options.channels ?? (architecture === 'resnet18' ? 3 : 1);
  const width = options.width ?? 224;
  const height = options.height ?? 224;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 32 || height < 32) {
    throw new RangeError(`input size must be integers >= 32, got ${width}x${height}`);
  }
  const labels = options.labels ? [...options.labels] : [...CNN_DEFAULT_LABELS];
  if (labels.length < 1) throw new RangeError('at least one label is needed');
  const output = options.output ?? 'logits';
  const batch: Dim = options.fixedBatch ? 1 : 'N';

  const g = new GraphBuilder(options.seed ?? 0);
  const body = architecture === 'resnet18' ? resnet18 : densenet121;
  const { x, features } = body(g, CNN_INPUT_NAME, channels);
  g.head(x, features, labels.length, CNN_OUTPUT_NAME, output === 'probabilities');

  checkTopologicalOrder(g.nodes, [CNN_INPUT_NAME, ...g.initializers.map((t) => t.name)]);
  const onnx = encodeModel({
    irVersion: 8,
    opsetImports: [{ domain: '', version: 13 }],
    producerName: 'cxr-classify-demo-model',
    producerVersion: '0.1.0',
    docString: `${architecture}-shaped classifier with seeded random weights, for measurements. Not a medical model.`,
    graph: {
      name: architecture,
      nodes: g.nodes,
      initializers: g.initializers,
      inputs: [{ name: CNN_INPUT_NAME, elemType: TensorDataType.FLOAT, shape: [batch, channels, height, width] }],
      outputs: [{ name: CNN_OUTPUT_NAME, elemType: TensorDataType.FLOAT, shape: [batch, labels.length] }],
    },
  });
  const norm = channels === 3 ? IMAGENET : { mean: [0.5], std: [0.25] };
  return {
    architecture,
    onnx,
    labels,
    inputSpec: { layout: 'NCHW', channels, width, height, mean: norm.mean, std: norm.std, output },
    parameters: g.parameters,
    operators: Object.fromEntries(
      [...new Set(g.nodes.map((n) => n.opType))].map((op) => [op, g.nodes.filter((n) => n.opType === op).length]),
    ),
  };
}
