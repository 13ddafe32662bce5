import { Type, type Static } from '@sinclair/typebox';

/**
 * How an image becomes a model's input tensor. Mean and std are per channel on the 0..1 scale:
 * value = (pixel / 255 - mean[c]) / std[c].
 * `output` says what the model's output holds: `probabilities` are used as they are, `logits`
 * go through softmax, and `auto` treats an output as probabilities when every value lies in
 * [0, 1] and they sum to 1 within 1e-3, and as logits otherwise.
 */
export const InputSpec = Type.Object(
  {
    layout: Type.Union([Type.Literal('NCHW'), Type.Literal('NHWC')]),
    channels: Type.Union([Type.Literal(1), Type.Literal(3)]),
    width: Type.Integer({ minimum: 1, maximum: 4096 }),
    height: Type.Integer({ minimum: 1, maximum: 4096 }),
    mean: Type.Array(Type.Number({ minimum: -10, maximum: 10 }), { minItems: 1, maxItems: 3 }),
    std: Type.Array(Type.Number({ exclusiveMinimum: 0, maximum: 1000 }), { minItems: 1, maxItems: 3 }),
    output: Type.Union([Type.Literal('auto'), Type.Literal('probabilities'), Type.Literal('logits')], {
      default: 'auto',
    }),
  },
  { additionalProperties: false },
);
export type InputSpec = Static<typeof InputSpec>;

/** Rules a schema cannot say: one mean and one std per channel. Returns a message or null. */
export function inputSpecProblem(spec: InputSpec): string | null {
  if (spec.mean.length !== spec.channels) {
    return `input_spec.mean has ${spec.mean.length} values but channels is ${spec.channels}`;
  }
  if (spec.std.length !== spec.channels) {
    return `input_spec.std has ${spec.std.length} values but channels is ${spec.channels}`;
  }
  return null;
}

/** The input tensor's dimensions for a batch of `batch` images. */
export function inputShape(spec: InputSpec, batch: number): [number, number, number, number] {
  return spec.layout === 'NCHW'
    ? [batch, spec.channels, spec.height, spec.width]
    : [batch, spec.height, spec.width, spec.channels];
}
