// Request and response schemas, shared by validation, serialization, TypeScript types and the
// OpenAPI document. A response schema is also what keeps internal fields out of an answer: the
// serializer writes the properties it lists and drops any other.
import { Type, type SchemaOptions, type Static, type TSchema } from '@sinclair/typebox';
import { Classification, InputSpec, ProcessingError } from '@cxr/contracts';

export const ObjectIdParam = Type.String({ pattern: '^[0-9a-f]{24}$', description: 'a 24-character hex id' });
export const IdParams = Type.Object({ id: ObjectIdParam });

export const Username = Type.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$',
  description: '3-64 letters, digits, . _ -',
});

export const CreateUserBody = Type.Object(
  { username: Username, is_admin: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);
export const RenameUserBody = Type.Object({ username: Username }, { additionalProperties: false });
export const CreateKeyBody = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 100 }) },
  { additionalProperties: false },
);
const KeyId = Type.String({ pattern: '^[0-9a-f]{16}$', description: "the key's id: 16 hex characters" });
export const KeyParams = Type.Object({ keyId: KeyId });

export const DatasetName = Type.String({
  pattern: '^[a-z0-9][a-z0-9-]{0,62}$',
  description: 'short: lowercase letters, digits and -, at most 63',
});
const Side = Type.Integer({ minimum: 1, maximum: 16384 });
export const Visibility = Type.Union([Type.Literal('private'), Type.Literal('public')], {
  description: 'public datasets can be read and classified against by every user; only the owner changes them',
});

export const CreateDatasetBody = Type.Object(
  {
    name: DatasetName,
    display_name: Type.String({ minLength: 1, maxLength: 200 }),
    description: Type.Optional(Type.String({ maxLength: 5000 })),
    img_width: Side,
    img_height: Side,
    maintain_ratio: Type.Optional(Type.Boolean()),
    visibility: Type.Optional(Visibility),
  },
  {
    additionalProperties: false,
    examples: [
      { name: 'pa-views', display_name: 'PA chest X-rays', img_width: 512, img_height: 512, maintain_ratio: true },
    ],
  },
);
export const UpdateDatasetBody = Type.Partial(CreateDatasetBody, { additionalProperties: false, minProperties: 1 });

export const SetDefaultModelBody = Type.Object({ model_id: ObjectIdParam }, { additionalProperties: false });

const Limit = Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'items per page' });
const Before = Type.Optional(
  Type.String({ ...ObjectIdParam, description: "the previous page's `next`: items older than this id" }),
);

export const ListQuery = Type.Object({ limit: Limit, before: Before });

export const ListClassificationsQuery = Type.Object({
  limit: Limit,
  before: Before,
  dataset: Type.Optional(Type.String({ ...ObjectIdParam, description: 'only requests to this dataset' })),
  model: Type.Optional(Type.String({ ...ObjectIdParam, description: 'only requests to this model' })),
  state: Type.Optional(
    Type.Union([Type.Literal('queued'), Type.Literal('assigned'), Type.Literal('classified'), Type.Literal('failed')], {
      description: 'only requests in this state',
    }),
  ),
  role: Type.Optional(
    Type.Union([Type.Literal('submitter'), Type.Literal('owner')], {
      description: 'only requests I submitted, or only requests to my datasets; both by default',
    }),
  ),
});

export const WaitQuery = Type.Object({
  wait: Type.Optional(
    Type.Number({ minimum: 0, maximum: 60, description: 'seconds to hold the answer until the request ends' }),
  ),
});

export const SubmitQuery = Type.Object({
  priority: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 9, default: 0, description: 'higher is served first, 0 to 9' }),
  ),
  callback_url: Type.Optional(
    Type.String({
      maxLength: 2048,
      description:
        'an absolute http(s) URL that gets the outcome POSTed, signed (CXR-Signature), when the request ends; ' +
        'at least once, so deduplicate by request id. No loopback, private or link-local target unless the ' +
        'operator allows it (CALLBACK_URL)',
      examples: ['https://example.org/cxr-hook'],
    }),
  ),
});

export const IdempotencyHeaders = Type.Object({
  'Idempotency-Key': Type.Optional(
    Type.String({
      description:
        "1-200 characters, e.g. the image's SHA-256: a retry with the same key, image, model and callback_url " +
        'answers 200 with the first request instead of submitting another; the same key with another of them is a 409',
      examples: ['9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'],
    }),
  ),
});

// Multipart forms: documentation only (see FastifyContextConfig.multipartForm); the routes read their parts themselves.
const binary = (description: string) => Type.String({ format: 'binary', description });
const jsonText = (schema: TSchema, description: string, example: unknown) =>
  Type.String({ contentMediaType: 'application/json', contentSchema: schema, description, examples: [example] });

export const ImageForm = Type.Object(
  {
    image: binary(
      'the PNG or JPEG, at most MAX_IMAGE_BYTES (20 MiB by default) and MAX_IMAGE_PIXELS (50 M) pixels, ' +
        "following the dataset's rules (minimum img_width x img_height, its ratio when maintain_ratio); the only part",
    ),
  },
  { additionalProperties: false },
);

export const ModelForm = Type.Object(
  {
    name: Type.Optional(Type.String({ maxLength: 100, description: 'a name for people; "model" when absent' })),
    labels: jsonText(
      Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 1, maxItems: 10000, uniqueItems: true }),
      'a JSON array of 1 to 10000 unique labels of at most 128 characters, one per model output, in output order',
      '["normal","pneumonia","covid"]',
    ),
    input_spec: jsonText(
      InputSpec,
      'a JSON object: how an image becomes the input tensor; value = (pixel / 255 - mean[c]) / std[c]',
      '{"layout":"NCHW","channels":1,"width":224,"height":224,"mean":[0.5],"std":[0.25],"output":"auto"}',
    ),
    file: binary(
      'the ONNX file, at most MAX_MODEL_BYTES (200 MiB by default): one float32 image input, one float32 output of one score per label',
    ),
  },
  { additionalProperties: false },
);

// Responses.
/** A reference to a named schema (one with an $id), typed as the schema it names. */
export const ref = <T extends TSchema>(schema: T, options?: SchemaOptions) =>
  Type.Unsafe<Static<T>>(Type.Ref(schema.$id!, options));

/** Every error answer: a code to branch on, a message to show; 5xx answers add the id that finds them in the logs. */
export const ApiError = Type.Object(
  {
    error: Type.String({ description: 'a stable code, listed with each response' }),
    message: Type.String({ description: 'what went wrong, for a person' }),
    request_id: Type.Optional(
      Type.String({ description: 'on 5xx answers: the X-Request-Id that finds the request in the logs' }),
    ),
  },
  {
    $id: 'ApiError',
    additionalProperties: false,
    examples: [{ error: 'IMAGE_RULES', message: 'the image is 512x512; this dataset needs at least 1024x1024' }],
  },
);
export type ApiError = Static<typeof ApiError>;

/** A time as the API writes it (ISO 8601); handlers hand over Dates, the serializer writes them. */
const DateTime = Type.Unsafe<Date | string>(Type.String({ format: 'date-time' }));
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
/** A string out of a fixed set; typed as a string where the handlers build it. */
const OneOf = (values: string[], description?: string) =>
  Type.Unsafe<string>(Type.String({ enum: values, ...(description && { description }) }));
const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256, hex' });
const Next = Nullable(
  Type.String({ ...ObjectIdParam, description: 'pass as ?before= for the next page; null on the last page' }),
);

export const User = Type.Object(
  { id: ObjectIdParam, username: Type.String(), is_admin: Type.Boolean(), created_at: Type.Optional(DateTime) },
  { $id: 'User', additionalProperties: false },
);

export const NewApiKey = Type.Object(
  {
    id: KeyId,
    name: Type.String(),
    key: Type.String({ description: 'the API key; shown this once, only its hash is stored' }),
  },
  { $id: 'NewApiKey', additionalProperties: false },
);

export const CreatedUser = Type.Object(
  { user: ref(User), api_key: ref(NewApiKey) },
  { $id: 'CreatedUser', additionalProperties: false },
);

export const ApiKeyList = Type.Object(
  {
    items: Type.Array(
      Type.Object(
        { id: KeyId, name: Type.String(), created_at: Type.Optional(DateTime), revoked_at: Nullable(DateTime) },
        { additionalProperties: false },
      ),
    ),
  },
  { $id: 'ApiKeyList', additionalProperties: false },
);

export const Dataset = Type.Object(
  {
    id: ObjectIdParam,
    owner: ObjectIdParam,
    name: DatasetName,
    display_name: Type.String(),
    description: Type.String(),
    img_width: Type.Integer({ description: 'minimum width of a submitted image, in pixels' }),
    img_height: Type.Integer({ description: 'minimum height of a submitted image, in pixels' }),
    maintain_ratio: Type.Boolean({
      description: 'images must have the ratio img_width:img_height, within ratio_tolerance',
    }),
    ratio_tolerance: Type.Number({
      description:
        "how far an image's ratio may differ from img_width:img_height when maintain_ratio is set, " +
        "as a fraction of it (0.01: 1%); the gateway's RATIO_TOLERANCE, the same for every dataset",
    }),
    visibility: OneOf(['private', 'public']),
    default_model: Nullable(ObjectIdParam),
    created_at: Type.Optional(DateTime),
    updated_at: Type.Optional(DateTime),
  },
  { $id: 'Dataset', additionalProperties: false },
);

export const DatasetPage = Type.Object(
  { items: Type.Array(ref(Dataset)), next: Next },
  { $id: 'DatasetPage', additionalProperties: false },
);

export const Model = Type.Object(
  {
    id: ObjectIdParam,
    dataset: ObjectIdParam,
    name: Type.String(),
    version: Type.Integer({ minimum: 1, description: '1, 2, … within the dataset' }),
    status: OneOf(['active', 'retired'], 'a retired model takes no new classifications'),
    is_default: Type.Boolean(),
    labels: Type.Array(Type.String()),
    input_spec: InputSpec,
    input_name: Type.String({ description: "the ONNX graph's input" }),
    output_name: Type.String({ description: "the ONNX graph's output" }),
    size: Type.Integer({ description: 'bytes' }),
    sha256: Sha256,
    uploaded_on: DateTime,
    retired_on: Nullable(DateTime),
  },
  { $id: 'Model', additionalProperties: false },
);

export const ModelPage = Type.Object(
  { items: Type.Array(ref(Model)), next: Next },
  { $id: 'ModelPage', additionalProperties: false },
);

const RequestState = OneOf(
  ['queued', 'assigned', 'classified', 'failed'],
  'queued: waiting for a worker; assigned: a worker has it; classified and failed are final',
);

export const Submission = Type.Object(
  {
    id: ObjectIdParam,
    state: RequestState,
    created_at: DateTime,
    links: Type.Object({ self: Type.String({ description: 'where to follow the request' }) }),
  },
  {
    $id: 'Submission',
    additionalProperties: false,
    examples: [
      {
        id: '6650f1c2a4b5c6d7e8f90123',
        state: 'queued',
        created_at: '2026-11-28T01:00:00.000Z',
        links: { self: '/v1/classifications/6650f1c2a4b5c6d7e8f90123' },
      },
    ],
  },
);

const WebhookDelivery = Type.Object(
  {
    url: Type.String({ description: 'the callback_url given at submission' }),
    status: OneOf(
      ['pending', 'delivered', 'failed'],
      'pending until the receiver answered 2xx (delivered) or the retries ran out or the target was refused (failed)',
    ),
    attempt_count: Type.Integer({ description: 'attempts made so far' }),
    attempts: Type.Array(
      Type.Object(
        {
          at: DateTime,
          status_code: Nullable(Type.Integer({ description: "the receiver's HTTP status" })),
          error: Nullable(Type.String({ description: 'why there was no HTTP status (refused, timeout, connection)' })),
          duration_ms: Type.Integer(),
        },
        { additionalProperties: false },
      ),
      { description: 'the latest attempts, oldest first (at most 10)' },
    ),
  },
  { additionalProperties: false },
);

export const ClassificationRequest = Type.Object(
  {
    id: ObjectIdParam,
    state: RequestState,
    dataset: ObjectIdParam,
    model: ObjectIdParam,
    submitter: ObjectIdParam,
    priority: Type.Integer({ minimum: 0, maximum: 9 }),
    image: Type.Object({
      format: OneOf(['png', 'jpeg']),
      width: Type.Integer(),
      height: Type.Integer(),
      size: Type.Integer({ description: 'bytes' }),
      sha256: Sha256,
    }),
    result: Nullable(Classification),
    errors: Type.Array(ProcessingError, { description: 'why a failed request failed' }),
    worker: Nullable(Type.String({ description: 'the inference worker that took it' })),
    attempts: Type.Integer({ description: 'deliveries reported by workers' }),
    dispatches: Type.Integer({ description: 'times its job was sent to the queue' }),
    timings: Type.Record(Type.String(), Type.Number(), { description: 'milliseconds per step, from the worker' }),
    created_at: DateTime,
    dispatched_at: Nullable(DateTime),
    assigned_on: Nullable(DateTime),
    completed_at: Nullable(DateTime),
    webhook: Nullable(WebhookDelivery),
  },
  {
    $id: 'ClassificationRequest',
    additionalProperties: false,
    examples: [
      {
        id: '6650f1c2a4b5c6d7e8f90123',
        state: 'classified',
        dataset: '6650f0a1a4b5c6d7e8f90001',
        model: '6650f0b2a4b5c6d7e8f90002',
        submitter: '6650f000a4b5c6d7e8f90000',
        priority: 0,
        image: { format: 'png', width: 1024, height: 1024, size: 734003, sha256: 'ab'.repeat(32) },
        result: {
          label: 'normal',
          score: 0.91,
          scores: [
            { label: 'normal', score: 0.91 },
            { label: 'pneumonia', score: 0.09 },
          ],
        },
        errors: [],
        worker: 'inference-1',
        attempts: 1,
        dispatches: 1,
        timings: { queueMs: 12, inferenceMs: 48, totalMs: 95 },
        created_at: '2026-11-28T01:00:00.000Z',
        dispatched_at: '2026-11-28T01:00:00.010Z',
        assigned_on: '2026-11-28T01:00:00.020Z',
        completed_at: '2026-11-28T01:00:00.120Z',
        webhook: {
          url: 'https://example.org/cxr-hook',
          status: 'delivered',
          attempt_count: 1,
          attempts: [{ at: '2026-11-28T01:00:00.300Z', status_code: 200, error: null, duration_ms: 35 }],
        },
      },
    ],
  },
);

export const WebhookSecret = Type.Object(
  {
    secret: Type.String({
      description:
        "the key of the HMAC-SHA256 in the CXR-Signature header of this user's webhooks (as text, whsec_ included)",
      examples: ['whsec_3q2-7wAAAAC1ReVVsH0aWx8B-8SCQw5W6jI-Bgtw3Ko'],
    }),
    signature_header: Type.String({ description: 'the header that carries the signature' }),
    scheme: Type.String({ description: 'what is signed' }),
  },
  { $id: 'WebhookSecret', additionalProperties: false },
);

export const ClassificationPage = Type.Object(
  {
    items: Type.Array(
      Type.Object(
        {
          id: ObjectIdParam,
          state: RequestState,
          dataset: ObjectIdParam,
          model: ObjectIdParam,
          label: Nullable(Type.String({ description: 'the top label, once classified' })),
          score: Nullable(Type.Number()),
          created_at: DateTime,
          completed_at: Nullable(DateTime),
        },
        { additionalProperties: false },
      ),
    ),
    next: Next,
  },
  { $id: 'ClassificationPage', additionalProperties: false },
);

/** What a webhook POSTs when its request ends: the event, and the request as the API shows it, less its delivery. */
export const WebhookEvent = Type.Object(
  {
    type: OneOf(['classification.classified', 'classification.failed'], 'classification.<the final state>'),
    request: Type.Object(Type.Omit(ClassificationRequest, ['webhook']).properties, {
      additionalProperties: false,
      description: 'as GET /v1/classifications/{id} answers it, without `webhook` (which each attempt changes)',
    }),
  },
  { $id: 'WebhookEvent', additionalProperties: false },
);

/** The named schemas of the answers: registered once (app.addSchema), referenced by $id, components in the document. */
export const RESPONSE_SCHEMAS = [
  ApiError,
  User,
  NewApiKey,
  CreatedUser,
  ApiKeyList,
  Dataset,
  DatasetPage,
  Model,
  ModelPage,
  Submission,
  ClassificationRequest,
  ClassificationPage,
  WebhookSecret,
  WebhookEvent,
];
