// The typed client: every operation of the OpenAPI document through openapi-fetch (`api`), and the
// calls most users need, with their chores done: classify() (an Idempotency-Key from the image's
// hash, the upload as multipart, waiting for the outcome) and uploadModel().
import createClient, { type Client, type ClientOptions } from 'openapi-fetch';
import type { components, paths } from './schema';

export type Schemas = components['schemas'];
export type Submission = Schemas['Submission'];
export type ClassificationRequest = Schemas['ClassificationRequest'];
export type Model = Schemas['Model'];
/** The body of a webhook (the OpenAPI document's `webhooks.classificationEnded`). */
export type WebhookEvent = Schemas['WebhookEvent'];
export type InputSpec = Model['input_spec'];

/** An answer of the API that is not a success: its status, error code (IMAGE_RULES, NOT_FOUND…) and message. */
export class CxrApiError extends Error {
  override readonly name = 'CxrApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** On 5xx answers: what finds the request in the gateway's logs. */
    readonly requestId?: string,
    /** Retry-After of a refusal for load (429, 503), in seconds. */
    readonly retryAfterSeconds?: number,
  ) {
    super(`${status} ${code}: ${message}`);
  }
}

export interface CxrClientOptions {
  /** The gateway, e.g. http://127.0.0.1:8080 (no /v1). */
  baseUrl: string;
  /** An API key (cxr_…); sent as a bearer token. */
  apiKey?: string;
  /** A fetch to use instead of the global one. */
  fetch?: ClientOptions['fetch'];
}

/** What to classify with: a dataset's default model, or one model. */
export type ClassifyTarget = { dataset: string } | { model: string };

export interface ClassifyOptions {
  /** Seconds to wait for the outcome (any number; asked 60 s at a time). Absent: answer with the submission at once. */
  wait?: number;
  /** 0 to 9, higher first. */
  priority?: number;
  /**
   * Where the gateway POSTs the outcome, signed, when the request ends (at least once: deduplicate by
   * request id; check it with verifyWebhookSignature).
   */
  callbackUrl?: string;
  /**
   * The Idempotency-Key. By default one made of the target and the image's SHA-256, so submitting the same
   * image to the same target again answers the first request instead of making another; false sends none.
   */
  idempotencyKey?: string | false;
  /** Aborts the upload and the waiting (the request, once submitted, goes on in the system). */
  signal?: AbortSignal;
  /**
   * Times a submission refused for load (503 OVERLOADED, 429 RATE_LIMITED: both answered before
   * anything is stored) is sent again, each after its Retry-After plus up to half as much again
   * (so refused clients do not all come back at once). Default 5; 0 gives the refusal at once.
   */
  retries?: number;
}

/** The image: a Blob (a File in a browser) or its bytes (a Buffer). */
export type ImageInput = Blob | Uint8Array;

const FINAL = new Set(['classified', 'failed']);
/** Refusals for load, answered before the gateway stores anything: safe to send again. */
const SHED = new Set(['OVERLOADED', 'RATE_LIMITED']);
/** The longest ?wait= the gateway takes. */
const MAX_WAIT_SECONDS = 60;

export class CxrClient {
  /** Every operation of the API, typed from its OpenAPI document: `api.GET('/v1/datasets/{id}', …)`. */
  readonly api: Client<paths>;

  constructor(options: CxrClientOptions) {
    this.api = createClient<paths>({
      baseUrl: options.baseUrl.replace(/\/+$/, ''),
      headers: options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {},
      ...(options.fetch && { fetch: options.fetch }),
    });
  }

  /**
   * Submits an image and, with `wait`, waits for its outcome. Resolves to the request once it ended
   * (state classified or failed) or the wait ran out (0: as it is now), or to the submission without `wait`; rejects
   * with a CxrApiError when the API refuses it (IMAGE_RULES, NOT_FOUND, CONFLICT…).
   */
  classify(
    image: ImageInput,
    target: ClassifyTarget,
    options?: ClassifyOptions & { wait?: undefined },
  ): Promise<Submission>;
  classify(
    image: ImageInput,
    target: ClassifyTarget,
    options: ClassifyOptions & { wait: number },
  ): Promise<ClassificationRequest>;
  classify(
    image: ImageInput,
    target: ClassifyTarget,
    options?: ClassifyOptions,
  ): Promise<Submission | ClassificationRequest>;
  async classify(
    image: ImageInput,
    target: ClassifyTarget,
    options: ClassifyOptions = {},
  ): Promise<Submission | ClassificationRequest> {
    const blob = image instanceof Blob ? image : new Blob([image]);
    const key =
      options.idempotencyKey === false
        ? undefined
        : (options.idempotencyKey ?? (await defaultIdempotencyKey(blob, target)));
    const request = {
      params: {
        path: { id: 'dataset' in target ? target.dataset : target.model },
        query: {
          ...(options.priority !== undefined && { priority: options.priority }),
          ...(options.callbackUrl !== undefined && { callback_url: options.callbackUrl }),
        },
        header: key === undefined ? {} : { 'Idempotency-Key': key },
      },
      body: { image: blob },
      bodySerializer: multipart,
      ...(options.signal && { signal: options.signal }),
    };
    const submit = () =>
      succeed(
        'dataset' in target
          ? this.api.POST('/v1/datasets/{id}/classifications', request)
          : this.api.POST('/v1/models/{id}/classifications', request),
      );
    const submitted = await retryWhenShed(submit, options.retries ?? 5, options.signal);
    if (options.wait === undefined) return submitted;
    return this.waitFor(submitted.id, options.wait, options.signal);
  }

  /** The request once it ended, or as it stands when `seconds` have passed. */
  async waitFor(id: string, seconds: number, signal?: AbortSignal): Promise<ClassificationRequest> {
    const deadline = Date.now() + seconds * 1000;
    for (;;) {
      const wait = Math.min(MAX_WAIT_SECONDS, Math.max(0, Math.ceil((deadline - Date.now()) / 1000)));
      const request = await succeed(
        this.api.GET('/v1/classifications/{id}', {
          params: { path: { id }, query: { wait } },
          ...(signal && { signal }),
        }),
      );
      if (FINAL.has(request.state) || Date.now() >= deadline) return request;
    }
  }

  /** Uploads an ONNX model to a dataset; the gateway loads it and runs it once before it answers. */
  async uploadModel(
    datasetId: string,
    model: { file: ImageInput; labels: string[]; inputSpec: InputSpec; name?: string },
  ): Promise<Model> {
    return succeed(
      this.api.POST('/v1/datasets/{id}/models', {
        params: { path: { id: datasetId } },
        body: {
          ...(model.name !== undefined && { name: model.name }),
          labels: JSON.stringify(model.labels),
          input_spec: JSON.stringify(model.inputSpec),
          file: model.file instanceof Blob ? model.file : new Blob([model.file]),
        },
        bodySerializer: multipart,
      }),
    );
  }
}

/**
 * The data of a successful answer, or a CxrApiError. For calls through `api`:
 * `const dataset = await succeed(client.api.GET('/v1/datasets/{id}', …))`.
 */
export async function succeed<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (response.ok) return data as T;
  const body = (error ?? {}) as { error?: unknown; message?: unknown; request_id?: unknown };
  throw new CxrApiError(
    response.status,
    typeof body.error === 'string' ? body.error : `HTTP_${response.status}`,
    typeof body.message === 'string' ? body.message : response.statusText,
    typeof body.request_id === 'string' ? body.request_id : undefined,
    retryAfter(response.headers.get('retry-after')),
  );
}

/** Retry-After in seconds (the gateway sends seconds; an HTTP date is read too), or undefined. */
function retryAfter(header: string | null): number | undefined {
  if (header === null) return undefined;
  const seconds = /^\d+$/.test(header.trim()) ? Number(header) : (Date.parse(header) - Date.now()) / 1000;
  return Number.isFinite(seconds) ? Math.min(Math.max(seconds, 0), 300) : undefined;
}

/** Calls `send` again while the gateway sheds it (OVERLOADED, RATE_LIMITED), after its Retry-After with jitter. */
async function retryWhenShed<T>(send: () => Promise<T>, retries: number, signal?: AbortSignal): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await send();
    } catch (error) {
      if (!(error instanceof CxrApiError) || !SHED.has(error.code) || attempt >= retries) throw error;
      const seconds = error.retryAfterSeconds ?? 1;
      await sleep(seconds * 1000 * (1 + Math.random() / 2), signal);
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', abort);
      resolve();
    }, ms);
    const abort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', abort, { once: true });
  });
}

/** A form's fields as multipart/form-data, files as file parts. */
function multipart(body: Record<string, string | Blob>): FormData {
  const form = new FormData();
  for (const [name, value] of Object.entries(body)) {
    if (value instanceof Blob) form.append(name, value, name);
    else form.append(name, value);
  }
  return form;
}

/** The target and the image's SHA-256: the same image to the same target is one request. */
async function defaultIdempotencyKey(image: Blob, target: ClassifyTarget): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', await image.arrayBuffer());
  const hex = Buffer.from(digest).toString('hex');
  return 'dataset' in target ? `dataset-${target.dataset}-${hex}` : `model-${target.model}-${hex}`;
}
