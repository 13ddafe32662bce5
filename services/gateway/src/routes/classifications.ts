import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import {
  idempotencyRecordId,
  isDuplicateKeyError,
  type ClassificationRequests,
  type Database,
  type RequestRecord,
  type ResultRecord,
} from '@cxr/db';
import type { ObjectStore } from '@cxr/storage';
import { Types } from 'mongoose';
import { badRequest, conflict, notFound, tooLarge, unavailable } from '../errors';
import type { CompletionWaiters } from '../lib/completion-waiters';
import type { Dispatcher, JobTarget } from '../dispatch/dispatcher';
import type { UnsentJobs } from '../dispatch/unsent-jobs';
import { requestSpan } from '../tracing';
import { loadDataset, loadModel, type MetadataCache } from '../lib/access';
import { page } from '../lib/paging';
import { classificationView, publicState } from '../lib/views';
import { IMAGE_HEAD_BYTES, inspectImage } from '../lib/image-check';
import { MultipartReader } from '../lib/multipart';
import { StageTimer } from '../lib/server-timing';
import { SpooledUpload } from '../lib/upload-spool';
import { requireUser } from '../plugins/auth';
import { callbackUrlProblem, type AddressGuard } from '../webhooks/address-guard';
import { answer, errorResponses, type ErrorCode, type Responses } from '../openapi';
import {
  ClassificationPage,
  ClassificationRequest as ClassificationRequestSchema,
  IdempotencyHeaders,
  IdParams,
  ImageForm,
  ListClassificationsQuery,
  Submission,
  SubmitQuery,
  WaitQuery,
} from '../schemas';

export interface ClassificationsRoutesOptions {
  db: Database;
  requests: ClassificationRequests;
  store: ObjectStore;
  dispatcher: Dispatcher;
  unsent: UnsentJobs;
  waiters: CompletionWaiters;
  /** Datasets and models as submissions read them. */
  metadata: MetadataCache;
  maxImageBytes: number;
  /** Where an upload larger than `uploadMemoryBytes` is spooled (in a file unlinked at once). */
  spoolDir: string;
  uploadMemoryBytes: number;
  /** How long a client may send nothing while its image is read. */
  bodyIdleMs: number;
  maxImagePixels: number;
  maxImageDecodedBytes: number;
  ratioTolerance: number;
  /** Refuses callback_urls that name a non-public address. */
  callbackGuard: AddressGuard;
}

const TERMINAL = new Set(['classified', 'failed']);

/** What a submission answers: a new request (202), the earlier one for a repeated Idempotency-Key (200), or why not. */
const SUBMISSION_ERRORS: ErrorCode[] = [
  'VALIDATION',
  'BAD_REQUEST',
  'CALLBACK_URL',
  'MALFORMED_MULTIPART',
  'NOT_FOUND',
  'REQUEST_TIMEOUT',
  'CONFLICT',
  'TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'FST_ERR_CTP_INVALID_MEDIA_TYPE',
  'IMAGE_INVALID',
  'IMAGE_RULES',
  'OVERLOADED',
];
const SUBMISSION_DESCRIPTION =
  "multipart/form-data with the PNG or JPEG in the file field 'image'. Answers 202 with the request id; an Idempotency-Key header makes retries safe.";
const SUBMISSION_RESPONSES: Responses = {
  200: answer(Submission, 'The earlier request with this Idempotency-Key, image, model and callback_url'),
  202: answer(Submission, 'Accepted: the request is stored, and its job is sent right after; Location names it'),
  ...errorResponses(...SUBMISSION_ERRORS),
};
const REQUEST_RESPONSES: Responses = {
  200: answer(ClassificationRequestSchema, 'The request: final once state is classified or failed'),
  ...errorResponses('VALIDATION', 'NOT_FOUND'),
};

export const classificationsRoutes: FastifyPluginAsyncTypebox<ClassificationsRoutesOptions> = async (app, options) => {
  const { db, store, dispatcher, requests } = options;
  const { ClassificationRequest, ClassificationResult, IdempotencyRecord } = db.models;

  /** Reads the one part of the form, the image: in memory up to `uploadMemoryBytes`, beyond that in a file. */
  async function readImage(request: FastifyRequest): Promise<SpooledUpload> {
    if (!request.isMultipart()) throw badRequest("send the image as multipart/form-data in the file field 'image'");
    const form = new MultipartReader(request, {
      limits: { files: 1, fields: 0, parts: 1, fileSize: options.maxImageBytes },
      form: "one file, in the file field 'image'",
      tooLargeMessage: `the image is larger than the limit of ${options.maxImageBytes} bytes`,
      idleMs: options.bodyIdleMs,
    });
    let upload: SpooledUpload | null = null;
    try {
      // Read to the end: a second part, whatever it is, is refused rather than ignored.
      for (let part = await form.next(); part; part = await form.next()) {
        if (part.type !== 'file' || part.fieldname !== 'image') {
          throw badRequest(
            `unexpected ${part.type} '${part.fieldname}'; send only the image, in the file field 'image'`,
          );
        }
        upload = await form.read(part, (file) =>
          SpooledUpload.from(file.file, {
            dir: options.spoolDir,
            memoryBytes: options.uploadMemoryBytes,
            headBytes: IMAGE_HEAD_BYTES,
            sizeHint: Number(request.headers['content-length']) || undefined,
          }),
        );
        if (part.file.truncated) throw tooLarge(`the image is larger than the limit of ${options.maxImageBytes} bytes`);
      }
      if (!upload) throw badRequest("no image: send it in the multipart file field 'image'");
      if (upload.size === 0) throw badRequest('the image file is empty');
      return upload;
    } catch (error) {
      await upload?.close();
      throw error;
    } finally {
      form.close();
    }
  }

  async function submit(
    request: FastifyRequest,
    dataset: Awaited<ReturnType<typeof loadDataset>>,
    model: JobTarget['model'] & { status: string },
    query: { priority?: number | undefined; callback_url?: string | undefined },
    timing: StageTimer,
  ) {
    const { userId } = requireUser(request);
    if (model.status !== 'active') throw conflict('the model is retired; choose an active model');
    const callbackUrl = query.callback_url ?? null;
    const callbackProblem = callbackUrl === null ? null : callbackUrlProblem(callbackUrl, options.callbackGuard);
    if (callbackProblem) throw badRequest(callbackProblem, 'CALLBACK_URL');
    const idempotencyHeader = request.headers['idempotency-key'];
    const idempotencyKey = typeof idempotencyHeader === 'string' ? idempotencyHeader.trim() : undefined;
    if (idempotencyKey !== undefined && (idempotencyKey.length === 0 || idempotencyKey.length > 200)) {
      throw badRequest('Idempotency-Key must be 1 to 200 characters');
    }

    const upload = await readImage(request);
    timing.mark('upload');
    try {
      const submission = { priority: query.priority ?? 0, callbackUrl, idempotencyKey };
      return await record(request, upload, dataset, model, userId, submission, timing);
    } finally {
      await upload.close();
    }
  }

  /** Checks the spooled image, stores it and its request, and sends its job. */
  async function record(
    request: FastifyRequest,
    upload: SpooledUpload,
    dataset: Awaited<ReturnType<typeof loadDataset>>,
    model: JobTarget['model'],
    userId: Types.ObjectId,
    {
      priority,
      callbackUrl,
      idempotencyKey,
    }: { priority: number; callbackUrl: string | null; idempotencyKey?: string },
    timing: StageTimer,
  ) {
    // The header only (libvips on libuv's thread pool): cheap, and bounded by the submissions
    // admitted at once, so it waits in no queue of its own.
    const image = await inspectImage(upload, {
      minWidth: dataset.img_width,
      minHeight: dataset.img_height,
      maintainRatio: dataset.maintain_ratio,
      ratioTolerance: options.ratioTolerance,
      maxPixels: options.maxImagePixels,
      maxDecodedBytes: options.maxImageDecodedBytes,
    });
    timing.mark('check');
    const { sha256, size } = upload;

    let requestId = new Types.ObjectId();
    let claimId: string | null = null;
    if (idempotencyKey) {
      // The claim comes first and its primary key decides: one insert, a read only on a repeat.
      claimId = idempotencyRecordId(userId, idempotencyKey);
      const earlier = await claimIdempotencyKey(claimId, requestId, model._id, sha256, callbackUrl, idempotencyKey);
      timing.mark('claim');
      if (earlier.request) return { status: 200, request: earlier.request };
      // The earlier submission stopped between its claim and its record: finish it under its id.
      requestId = earlier.requestId;
    }

    const key = `images/${String(dataset._id)}/${String(requestId)}.${image.format === 'png' ? 'png' : 'jpg'}`;
    let created: RequestRecord;
    const token = dispatcher.newToken(1);
    try {
      // The blob goes first: a request record never points at an image that is not there.
      await store.put(key, upload.body(), {
        contentType: `image/${image.format}`,
        contentLength: size,
        metadata: { sha256 },
        sha256,
      });
      timing.mark('store');
      created = await requests.create({
        _id: requestId,
        model: model._id,
        dataset: dataset._id,
        dataset_owner: dataset.owner,
        submitter: userId,
        image: { key, sha256, size, format: image.format, width: image.width, height: image.height },
        priority,
        idempotency_key: idempotencyKey ?? null,
        correlation_id: randomUUID(),
        tokens: [token.record],
        callback_url: callbackUrl,
      });
      timing.mark('record');
    } catch (error) {
      const existing = await requests.get(requestId).catch(() => null);
      // Two retries of one interrupted submission raced to finish it; the first one's record is the answer.
      if (existing && isDuplicateKeyError(error)) return { status: 200, request: existing };
      if (!existing) {
        // Nothing half-written stays behind: no blob and no claim without their request.
        await store.delete(key).catch(() => undefined);
        if (claimId) await IdempotencyRecord.deleteOne({ _id: claimId }).catch(() => undefined);
      }
      throw error;
    }
    const target = { model, keepAspectRatio: dataset.maintain_ratio, traceparent: requestSpan(request)?.traceparent() };
    dispatcher.publishSoon(created, token, target, (error) => {
      // Accepted all the same: the request is stored; its job goes when the broker is back, or
      // when its publish timer falls due.
      options.unsent.add(created, token, target);
      request.log.warn({ err: error, requestId: String(requestId) }, 'publish failed; kept until the broker is back');
    });
    return { status: 202, request: created };
  }

  /**
   * Claims an Idempotency-Key for a new request. On a repeat, answers the earlier request (409
   * when it asked for another image, model or callback_url), or its id when it was never stored.
   */
  async function claimIdempotencyKey(
    claimId: string,
    requestId: Types.ObjectId,
    modelId: Types.ObjectId,
    sha256: string,
    callbackUrl: string | null,
    idempotencyKey: string,
  ): Promise<{ request: RequestRecord | null; requestId: Types.ObjectId }> {
    try {
      await IdempotencyRecord.create({
        _id: claimId,
        request: requestId,
        model: modelId,
        image_sha256: sha256,
        callback_url: callbackUrl,
        created_at: requests.now(),
      });
      return { request: null, requestId };
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
    }
    const claim = await IdempotencyRecord.findById(claimId).lean();
    if (!claim) throw unavailable('the Idempotency-Key is being released; retry in a moment');
    const sameCallback = claim.callback_url === undefined || claim.callback_url === callbackUrl;
    if (!claim.model.equals(modelId) || claim.image_sha256 !== sha256 || !sameCallback) {
      throw conflict(`Idempotency-Key '${idempotencyKey}' was already used for another image, model or callback_url`);
    }
    return { request: await requests.get(claim.request), requestId: claim.request };
  }

  /**
   * A submission's stage timer (its Server-Timing header), from when the router took it: the
   * first stage, `auth`, is the router's hooks (admission, rate limits, the API key).
   */
  function arrived(elapsedMs: number): StageTimer {
    const timing = new StageTimer(performance.now() - elapsedMs);
    timing.mark('auth');
    return timing;
  }

  /** The answer to a taken submission: its status, headers (where it is, where the time went) and body. */
  function accepted(outcome: { status: number; request: RequestRecord }, timing: StageTimer) {
    const id = String(outcome.request._id);
    const self = `/v1/classifications/${id}`;
    return {
      status: outcome.status,
      headers: { location: self, 'server-timing': timing.header() },
      body: { id, state: publicState(outcome.request.state), created_at: outcome.request.created_at, links: { self } },
    };
  }

  app.post(
    '/datasets/:id/classifications',
    {
      schema: {
        tags: ['classifications'],
        operationId: 'classifyWithDataset',
        summary: "Classify an image with the dataset's default model",
        description: SUBMISSION_DESCRIPTION,
        params: IdParams,
        querystring: SubmitQuery,
        headers: IdempotencyHeaders,
        consumes: ['multipart/form-data'],
        response: SUBMISSION_RESPONSES,
      },
      config: { multipartForm: ImageForm },
    },
    async (request, reply) => {
      const timing = arrived(reply.elapsedTime);
      const { userId } = requireUser(request);
      const dataset = await loadDataset(options.metadata, request.params.id, userId, 'read');
      if (!dataset.default_model) throw conflict('the dataset has no model yet; upload one first');
      const model = await options.metadata.model(String(dataset.default_model));
      if (!model) throw conflict("the dataset's default model is missing");
      timing.mark('lookup');
      const answer = accepted(await submit(request, dataset, model, request.query, timing), timing);
      return reply.code(answer.status).headers(answer.headers).send(answer.body);
    },
  );

  app.post(
    '/models/:id/classifications',
    {
      schema: {
        tags: ['classifications'],
        operationId: 'classifyWithModel',
        summary: 'Classify an image with a chosen model',
        description: SUBMISSION_DESCRIPTION,
        params: IdParams,
        querystring: SubmitQuery,
        headers: IdempotencyHeaders,
        consumes: ['multipart/form-data'],
        response: SUBMISSION_RESPONSES,
      },
      config: { multipartForm: ImageForm },
    },
    async (request, reply) => {
      const timing = arrived(reply.elapsedTime);
      const { userId } = requireUser(request);
      const { model, dataset } = await loadModel(options.metadata, request.params.id, userId, 'read');
      timing.mark('lookup');
      const answer = accepted(await submit(request, dataset, model, request.query, timing), timing);
      return reply.code(answer.status).headers(answer.headers).send(answer.body);
    },
  );

  /** The request as its submitter or its dataset's owner may see it, with its result if it has one. */
  async function load(id: Types.ObjectId, userId: Types.ObjectId) {
    const request = await requests.get(id);
    if (!request || !(request.submitter.equals(userId) || request.dataset_owner.equals(userId))) {
      throw notFound('classification request');
    }
    return { request, result: await requests.result(id) };
  }

  async function view(request: RequestRecord, result: ResultRecord | null) {
    // Caught between the result's insert and the request's update: finish the update now, so
    // a client that saw the outcome here also finds it when listing by state.
    if (result && !TERMINAL.has(request.state)) {
      // Best effort: the answer comes from the result either way, and the request's timer repairs it later.
      await requests.settle(request, result).catch((error: unknown) => {
        app.log.warn(
          { err: error, requestId: String(request._id) },
          'could not move the request to its recorded outcome',
        );
      });
    }
    return classificationView(request, result);
  }

  app.get(
    '/classifications/:id',
    {
      schema: {
        tags: ['classifications'],
        operationId: 'getClassification',
        summary: 'A classification request with its result; ?wait=N holds the answer until it ends or N seconds pass',
        params: IdParams,
        querystring: WaitQuery,
        response: REQUEST_RESPONSES,
      },
    },
    async (request) => {
      const { userId } = requireUser(request);
      const id = new Types.ObjectId(request.params.id);
      const deadline = Date.now() + (request.query.wait ?? 0) * 1000;
      let closed = false;
      request.raw.once('close', () => {
        closed = true;
      });
      // Register first: an event arriving while the state is read still wakes this wait.
      let pending = options.waiters.expect(request.params.id);
      try {
        const first = await load(id, userId);
        if (first.result || Date.now() >= deadline || closed || options.waiters.closed) {
          return await view(first.request, first.result);
        }
        for (;;) {
          // Events are hints; looking again at least every second covers a missed one.
          const woken = await pending.wait(Math.min(deadline - Date.now(), 1_000));
          pending = options.waiters.expect(request.params.id);
          // Woken, the request has most likely ended; otherwise only the result is looked for,
          // the one read that can tell it did. The whole request is read once it has.
          const ended = woken || (await requests.result(id)) !== null;
          const over = Date.now() >= deadline || closed || options.waiters.closed;
          if (ended || over) {
            const now = await load(id, userId);
            if (now.result || over) return await view(now.request, now.result);
          }
        }
      } finally {
        pending.cancel();
      }
    },
  );

  app.get(
    '/classifications',
    {
      schema: {
        tags: ['classifications'],
        operationId: 'listClassifications',
        summary: 'Requests I submitted or that went to my datasets, newest first',
        querystring: ListClassificationsQuery,
        response: { 200: answer(ClassificationPage, 'A page of requests'), ...errorResponses('VALIDATION') },
      },
    },
    async (request) => {
      const { userId } = requireUser(request);
      const q = request.query;
      const visible =
        q.role === 'submitter'
          ? { submitter: userId }
          : q.role === 'owner'
            ? { dataset_owner: userId }
            : { $or: [{ submitter: userId }, { dataset_owner: userId }] };
      const paging = page(q);
      const filter: Record<string, unknown> = { ...visible, ...paging.filter };
      if (q.dataset) filter.dataset = new Types.ObjectId(q.dataset);
      if (q.model) filter.model = new Types.ObjectId(q.model);
      if (q.state) filter.state = q.state === 'queued' ? { $in: ['accepted', 'queued'] } : q.state;
      const items = await ClassificationRequest.find(filter).sort({ _id: -1 }).limit(q.limit).lean();
      // The request caches its outcome; only one still open may have a result it has not
      // caught up with (a process died between the two writes), so only those are looked up.
      const open = items.filter((i) => !TERMINAL.has(i.state));
      const late = await Promise.all(open.map((i) => ClassificationResult.findById(i._id).lean()));
      const byRequest = new Map(late.filter((r) => r !== null).map((r) => [String(r._id), r]));
      return {
        items: items.map((i) => {
          const result = byRequest.get(String(i._id));
          return {
            id: String(i._id),
            state: result ? result.state : publicState(i.state),
            dataset: String(i.dataset),
            model: String(i.model),
            label: result ? (result.classification?.label ?? null) : (i.label ?? null),
            score: result ? (result.classification?.score ?? null) : (i.score ?? null),
            created_at: i.created_at,
            completed_at: result ? result.completed_on : i.completed_at,
          };
        }),
        next: paging.next(items),
      };
    },
  );
};
