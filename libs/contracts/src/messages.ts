import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { InputSpec } from './input-spec';

/** Bumped on any incompatible change; a consumer refuses versions it does not know. */
export const MESSAGE_VERSION = 1;

const ObjectId = Type.String({ pattern: '^[0-9a-f]{24}$' });
const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$' });
const IsoDate = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?Z$' });

const Envelope = {
  v: Type.Literal(MESSAGE_VERSION),
  requestId: ObjectId,
  correlationId: Type.String({ minLength: 1, maxLength: 128 }),
  /** Secret of this dispatch; only its hash is stored. */
  dispatchToken: Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' }),
};

export const ImageFormat = Type.Union([Type.Literal('png'), Type.Literal('jpeg')]);
export type ImageFormat = Static<typeof ImageFormat>;

export const JobMessage = Type.Object({
  ...Envelope,
  type: Type.Literal('cxr.job'),
  dispatchedAt: IsoDate,
  model: Type.Object({
    id: ObjectId,
    key: Type.String({ minLength: 1, maxLength: 512 }),
    sha256: Sha256,
    size: Type.Integer({ minimum: 1 }),
    labels: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 1, maxItems: 10000 }),
    inputSpec: InputSpec,
  }),
  image: Type.Object({
    key: Type.String({ minLength: 1, maxLength: 512 }),
    sha256: Sha256,
    size: Type.Integer({ minimum: 1 }),
    format: ImageFormat,
  }),
  /** Letterbox instead of stretching, so an image with the dataset's ratio is never distorted. */
  keepAspectRatio: Type.Boolean(),
});
export type JobMessage = Static<typeof JobMessage>;

/** A label as models declare them (JobMessage's model labels): a result names one of those or is refused. */
const Label = Type.String({ minLength: 1, maxLength: 128 });

export const LabelScore = Type.Object({ label: Label, score: Type.Number() });
export type LabelScore = Static<typeof LabelScore>;

export const Classification = Type.Object({
  label: Label,
  score: Type.Number({ minimum: 0, maximum: 1 }),
  /** One per model label, so no more than a model may have. */
  scores: Type.Array(LabelScore, { minItems: 1, maxItems: 10000 }),
});
export type Classification = Static<typeof Classification>;

export const ProcessingError = Type.Object({
  code: Type.String({ pattern: '^[A-Z][A-Z0-9_]{1,63}$' }),
  message: Type.String({ maxLength: 2000 }),
});
export type ProcessingError = Static<typeof ProcessingError>;

export const Timings = Type.Object(
  {
    queueMs: Type.Optional(Type.Number({ minimum: 0 })),
    fetchModelMs: Type.Optional(Type.Number({ minimum: 0 })),
    fetchImageMs: Type.Optional(Type.Number({ minimum: 0 })),
    preprocessMs: Type.Optional(Type.Number({ minimum: 0 })),
    inferenceMs: Type.Optional(Type.Number({ minimum: 0 })),
    totalMs: Type.Optional(Type.Number({ minimum: 0 })),
    /** Images ONNX Runtime ran together with this one (1 when it ran alone); inferenceMs is that batch's. */
    batchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024 })),
  },
  { additionalProperties: false },
);
export type Timings = Static<typeof Timings>;

/**
 * What an inference worker reports on the results queue. `started` moves a request to
 * `assigned`; `classified` and `failed` end it.
 */
export const ResultMessage = Type.Object({
  ...Envelope,
  type: Type.Literal('cxr.result'),
  outcome: Type.Union([Type.Literal('started'), Type.Literal('classified'), Type.Literal('failed')]),
  worker: Type.String({ minLength: 1, maxLength: 128 }),
  modelId: ObjectId,
  at: IsoDate,
  classification: Type.Optional(Classification),
  errors: Type.Array(ProcessingError, { maxItems: 50 }),
  timings: Timings,
});
export type ResultMessage = Static<typeof ResultMessage>;

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Parses and validates a message body; never throws. */
export function decodeMessage<S extends TSchema>(schema: S, body: Buffer): Decoded<Static<S>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (error) {
    return { ok: false, reason: `body is not JSON: ${(error as Error).message}` };
  }
  if (typeof parsed === 'object' && parsed !== null && 'v' in parsed && parsed.v !== MESSAGE_VERSION) {
    return { ok: false, reason: `unsupported message version ${String(parsed.v)}` };
  }
  if (Value.Check(schema, parsed)) return { ok: true, value: parsed };
  const first = Value.Errors(schema, parsed).First();
  return {
    ok: false,
    reason: first ? `${first.path || '(message)'}: ${first.message}` : 'does not match the schema',
  };
}

export function encodeMessage(message: JobMessage | ResultMessage): Buffer {
  return Buffer.from(JSON.stringify(message), 'utf8');
}
