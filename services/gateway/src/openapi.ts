// The OpenAPI document's frame: info, servers, tags, the shared error answer and the error codes
// each route declares. Request and success schemas are in schemas.ts.
import type { Readable } from 'node:stream';
import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import { Type, type TSchema, type TUnsafe } from '@sinclair/typebox';
import { ApiError, ref } from './schemas';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The multipart/form-data fields of a route that reads its parts itself: shown in the
     * document as the request body, never given to Fastify to validate (which would consume it).
     */
    multipartForm?: object;
  }
}

/** The codes the gateway answers with, by status, and what each means. */
const ERROR_CODES = {
  VALIDATION: [400, 'a parameter, query or JSON body does not match its schema'],
  BAD_REQUEST: [400, 'the request is malformed in a way its message explains'],
  MALFORMED_MULTIPART: [400, 'the multipart body cannot be parsed'],
  CALLBACK_URL: [400, 'callback_url is not an absolute http(s) URL, is too long, or names a non-public address'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'the body is not valid JSON'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'the Content-Type is application/json but the body is empty'],
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'the JSON body is larger than 1 MiB'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'the body is of a Content-Type the route does not take'],
  UNAUTHORIZED: [401, 'no API key, or one that is malformed, unknown or revoked, or the bootstrap admin key'],
  FORBIDDEN: [403, 'authenticated, but only the owner (or an admin) may do this'],
  NOT_FOUND: [404, 'no such record, or one the caller may not see'],
  REQUEST_TIMEOUT: [408, 'the body stopped arriving for BODY_IDLE_SECONDS (30 by default)'],
  CONFLICT: [409, 'the request conflicts with the current state (a taken name, a retired model, a reused key…)'],
  TOO_LARGE: [413, 'the uploaded file or a form field is larger than the limit'],
  UNSUPPORTED_MEDIA_TYPE: [415, 'the file is not a PNG or JPEG'],
  IMAGE_INVALID: [422, 'the image header has no width or height'],
  IMAGE_RULES: [422, "the image breaks the dataset's rules: minimum size, ratio, pixel or decoded-size limit"],
  MODEL_NOT_LOADABLE: [422, 'ONNX Runtime cannot load the file'],
  MODEL_INPUTS: [422, 'the model does not have exactly one input'],
  MODEL_OUTPUTS: [422, 'the model does not have exactly one output'],
  MODEL_INPUT_TYPE: [422, 'the model input is not float32'],
  MODEL_INPUT_SHAPE: [422, 'the model input shape does not match input_spec'],
  MODEL_RUN_FAILED: [422, 'the model failed on a blank input of the declared shape'],
  MODEL_OUTPUT_TYPE: [422, 'the model output is not float32'],
  LABELS_MISMATCH: [422, 'the model has another number of outputs than labels were given'],
  MODEL_CHECK_TIMEOUT: [422, 'loading and running the model once took longer than MODEL_CHECK_TIMEOUT_SECONDS'],
  MODEL_CHECK_FAILED: [422, 'ONNX Runtime stopped while checking the model'],
  RATE_LIMITED: [429, 'too many requests from this IP or API key in the window; Retry-After says when to retry'],
  INTERNAL: [500, 'an unexpected error; request_id finds it in the logs'],
  UNAVAILABLE: [503, 'a dependency (database, object store, broker) cannot be reached, or the request took too long'],
  OVERLOADED: [503, 'the gateway or the queue is too busy for a new submission; Retry-After says when to retry'],
} as const satisfies Record<string, readonly [number, string]>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** What any route may answer: its caller may be refused, limited, or meet an outage. */
const ALWAYS: ErrorCode[] = ['UNAUTHORIZED', 'RATE_LIMITED', 'INTERNAL', 'UNAVAILABLE'];

/**
 * The error responses of a route, from the codes it can give (beyond those of every route):
 * one response per status, each the shared ApiError, its description listing the codes.
 */
export function errorResponses(...codes: ErrorCode[]): Record<number, TUnsafe<ApiError>> {
  const byStatus = new Map<number, string[]>();
  for (const code of [...new Set([...codes, ...ALWAYS])]) {
    const [status, meaning] = ERROR_CODES[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), `\`${code}\`: ${meaning}`]);
  }
  return Object.fromEntries(
    [...byStatus].sort(([a], [b]) => a - b).map(([status, lines]) => [status, errorRef(lines.join('; '))]),
  );
}

const errorRef = (description: string) => ref(ApiError, { description });

/** The errors of a route that takes a JSON body: those of its own and a body that does not parse. */
export const jsonBodyErrors = (...codes: ErrorCode[]) =>
  errorResponses(
    'VALIDATION',
    'FST_ERR_CTP_INVALID_JSON_BODY',
    'FST_ERR_CTP_EMPTY_JSON_BODY',
    'FST_ERR_CTP_BODY_TOO_LARGE',
    'FST_ERR_CTP_INVALID_MEDIA_TYPE',
    ...codes,
  );

/** A success answer as a response: a named schema (one of RESPONSE_SCHEMAS) by reference, with its description. */
export const answer = <T extends TSchema>(schema: T, description: string) => ref(schema, { description });

/**
 * A route's responses, typed loosely: for routes whose handlers build answers from database records
 * whose types are wider than the schemas (mongoose arrays, states as plain strings). The serializer
 * still writes only what the schemas list, and the contract test validates the answers.
 */
export type Responses = Record<number, TSchema>;

/** An answer without a body (204). */
export const noContent = (description: string) => Type.Unsafe<void>({ type: 'null', description });

/** A file answered as a stream of bytes (never serialized). */
export const fileAnswer = (description: string, mediaType: string) =>
  Type.Unsafe<Readable>({ description, content: { [mediaType]: { schema: { type: 'string', format: 'binary' } } } });

/** @fastify/swagger's options: the document's frame, components named by their $id, multipart forms shown. */
export const swaggerOptions: FastifyDynamicSwaggerOptions = {
  openapi: {
    openapi: '3.1.0',
    info: {
      title: 'CXR Classify API',
      version: '1',
      description:
        'Chest X-ray classification: datasets with image rules, ONNX models, and classification requests that ' +
        'a pool of inference workers answers asynchronously.\n\n' +
        'Every call but this document and the probes needs `Authorization: Bearer <API key>`. Errors are JSON ' +
        '`{error, message}` (5xx add `request_id`); each response lists the codes it can carry. Every answer ' +
        'carries `X-Request-Id` (a client may send its own) and the `RateLimit-*` headers. A malformed request ' +
        'line or headers get 400, headers too slow 408 and too large 431, before any route runs.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: '/', description: 'the gateway serving this document' }],
    tags: [
      { name: 'users', description: 'Users and their API keys' },
      { name: 'datasets', description: 'Datasets: the image rules submissions must follow, and their models' },
      { name: 'models', description: 'ONNX classifiers, versioned per dataset; one is the default' },
      { name: 'classifications', description: 'Submit an image, follow its request, list requests' },
    ],
    components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'cxr_<id>_<secret>' } } },
    security: [{ apiKey: [] }],
    webhooks: {
      classificationEnded: {
        post: {
          operationId: 'classificationEnded',
          summary: 'A request with a callback_url ended',
          description:
            'POSTed to the `callback_url` given at submission once the request is classified or failed. ' +
            'At least once: deduplicate by `CXR-Request-Id`. Check `CXR-Signature` (`verifyWebhookSignature` in ' +
            '@cxr/client does): `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, keyed with the ' +
            "submitter's secret from `GET /v1/users/me/webhook-secret`, and refuse an old `t`. Any answer " +
            'but 2xx within WEBHOOK_TIMEOUT_SECONDS is tried again, backing off, for WEBHOOK_RETRY_SECONDS; ' +
            'redirects are not followed.',
          security: [],
          parameters: [
            {
              name: 'CXR-Signature',
              in: 'header',
              required: true,
              description: 'when it was signed and the signature of "<t>.<body>"',
              schema: { type: 'string', pattern: '^t=\\d+,v1=[0-9a-f]{64}$' },
            },
            {
              name: 'CXR-Request-Id',
              in: 'header',
              required: true,
              description: 'the request that ended: the same on every attempt',
              schema: { type: 'string' },
            },
            {
              name: 'CXR-Delivery-Attempt',
              in: 'header',
              required: true,
              description: '1 for the first attempt',
              schema: { type: 'integer', minimum: 1 },
            },
          ],
          requestBody: {
            required: true,
            content: { 'application/json': { schema: { $ref: '#/components/schemas/WebhookEvent' } } },
          },
          responses: {
            '2XX': { description: 'received: nothing more is sent for this request' },
            default: { description: 'not received: tried again later' },
          },
        },
      },
    },
  },
  refResolver: {
    buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
  },
  transform: ({ schema, url, route }) => {
    const form = route.config?.multipartForm;
    return { schema: form ? { ...schema, body: form } : schema, url };
  },
};
