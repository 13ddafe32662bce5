import { createHash, randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { isDuplicateKeyError, syncRequestWithResult, type Database } from '@cxr/db';
import type { ObjectStore } from '@cxr/storage';
import { Types } from 'mongoose';
import { badRequest, conflict, notFound, tooLarge } from '../errors';
import type { CompletionWaiters } from '../lib/completion-waiters';
import type { ConcurrencyLimit } from '../lib/concurrency-limit';
import type { Dispatcher } from '../lib/dispatch';
import { loadDataset, loadModel } from '../lib/access';
import { page } from '../lib/paging';
import { inspectImage } from '../lib/image-check';
import { requireUser } from '../plugins/auth';
import { IdParams, ListClassificationsQuery, SubmitQuery, WaitQuery } from '../schemas';

export interface ClassificationsRoutesOptions {
  db: Database;
  store: ObjectStore;
  dispatcher: Dispatcher;
  waiters: CompletionWaiters;
  imageChecks: ConcurrencyLimit;
  maxImageBytes: number;
  maxImagePixels: number;
  ratioTolerance: number;
}

const TERMINAL = new Set(['classified', 'failed']);

export const classificationsRoutes: FastifyPluginAsyncTypebox<ClassificationsRoutesOptions> = async (app, options) => {
  const { db, store, dispatcher } = options;
  const { ClassificationRequest, ClassificationResult } = db.models;

  async function readImage(request: FastifyRequest): Promise<Buffer> {
    if (!request.isMultipart()) throw badRequest("send the image as multipart/form-data in the file field 'image'");
    const file = await request.file({ limits: { fileSize: options.maxImageBytes, files: 1 } });
    if (!file) throw badRequest("no image: send it in the multipart file field 'image'");
    if (file.fieldname !== 'image') {
      file.file.resume();
      throw badRequest(`unexpected file field '${file.fieldname}'; send the image in 'image'`);
    }
    let bytes: Buffer;
    try {
      bytes = await file.toBuffer();
    } catch (error) {
      if ((error as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') {
        throw tooLarge(`the image is larger than the limit of ${options.maxImageBytes} bytes`);
      }
      throw error;
    }
    if (bytes.length === 0) throw badRequest('the image file is empty');
    return bytes;
  }

  async function submit(
    request: FastifyRequest,
    dataset: Awaited<ReturnType<typeof loadDataset>>,
    model: { _id: Types.ObjectId; status: string },
    priority: number,
  ) {
    const { userId } = requireUser(request);
    if (model.status !== 'active') throw conflict('the model is retired; choose an active model');
    const idempotencyHeader = request.headers['idempotency-key'];
    const idempotencyKey = typeof idempotencyHeader === 'string' ? idempotencyHeader.trim() : undefined;
    if (idempotencyKey !== undefined && (idempotencyKey.length === 0 || idempotencyKey.length > 200)) {
      throw badRequest('Idempotency-Key must be 1 to 200 characters');
    }

    const bytes = await readImage(request);
    const image = await options.imageChecks.run(() =>
      inspectImage(bytes, {
        minWidth: dataset.img_width,
        minHeight: dataset.img_height,
        maintainRatio: dataset.maintain_ratio,
        ratioTolerance: options.ratioTolerance,
        maxPixels: options.maxImagePixels,
      }),
    );
    const sha256 = createHash('sha256').update(bytes).digest('hex');

    /** The earlier request under the same key, if it asked for the same thing; 409 otherwise. */
    const earlier = async () => {
      if (!idempotencyKey) return null;
      const existing = await ClassificationRequest.findOne({
        submitter: userId,
        idempotency_key: idempotencyKey,
      }).lean();
      if (!existing) return null;
      if (!existing.model.equals(model._id) || existing.image.sha256 !== sha256) {
        throw conflict(`Idempotency-Key '${idempotencyKey}' was already used for another image or model`);
      }
      return { status: 200, request: existing };
    };
    const repeated = await earlier();
    if (repeated) return repeated;

    const requestId = new Types.ObjectId();
    const key = `images/${String(dataset._id)}/${String(requestId)}.${image.format === 'png' ? 'png' : 'jpg'}`;
    // The blob goes first: a request record never points at an image that is not there.
    await store.put(key, bytes, { contentType: `image/${image.format}`, metadata: { sha256 } });
    let created;
    try {
      created = await ClassificationRequest.create({
        _id: requestId,
        model: model._id,
        dataset: dataset._id,
        dataset_owner: dataset.owner,
        submitter: userId,
        image: { key, sha256, size: bytes.length, format: image.format, width: image.width, height: image.height },
        priority,
        idempotency_key: idempotencyKey ?? String(requestId),
        correlation_id: randomUUID(),
      });
    } catch (error) {
      await store.delete(key).catch(() => undefined);
      if (isDuplicateKeyError(error)) {
        // Two submissions under one key raced; the first one's request is the answer.
        const raced = await earlier();
        if (raced) return raced;
      }
      throw error;
    }
    try {
      await dispatcher.dispatch(requestId, 0);
    } catch (error) {
      // Accepted all the same: the request is stored and the sweeper publishes it later.
      request.log.warn({ err: error, requestId: String(requestId) }, 'dispatch failed; the sweeper will retry');
    }
    return { status: 202, request: created.toObject() };
  }

  function accepted(outcome: { status: number; request: { _id: Types.ObjectId; state: string; created_at?: Date } }) {
    const id = String(outcome.request._id);
    const self = `/v1/classifications/${id}`;
    return {
      status: outcome.status,
      location: self,
      body: { id, state: outcome.request.state, created_at: outcome.request.created_at, links: { self } },
    };
  }

  app.post(
    '/datasets/:id/classifications',
    {
      schema: {
        tags: ['classifications'],
        summary: "Classify an image with the dataset's default model",
        description:
          "multipart/form-data with the PNG or JPEG in the file field 'image'. Answers 202 with the request id; an Idempotency-Key header makes retries safe.",
        params: IdParams,
        querystring: SubmitQuery,
        consumes: ['multipart/form-data'],
      },
    },
    async (request, reply) => {
      const { userId } = requireUser(request);
      const dataset = await loadDataset(db, request.params.id, userId, 'read');
      if (!dataset.default_model) throw conflict('the dataset has no model yet; upload one first');
      const model = await db.models.ClassifierModel.findById(dataset.default_model, { status: 1 }).lean();
      if (!model) throw conflict("the dataset's default model is missing");
      const answer = accepted(await submit(request, dataset, model, request.query.priority ?? 0));
      return reply.code(answer.status).header('location', answer.location).send(answer.body);
    },
  );

  app.post(
    '/models/:id/classifications',
    {
      schema: {
        tags: ['classifications'],
        summary: 'Classify an image with a chosen model',
        params: IdParams,
        querystring: SubmitQuery,
        consumes: ['multipart/form-data'],
      },
    },
    async (request, reply) => {
      const { userId } = requireUser(request);
      const { model, dataset } = await loadModel(db, request.params.id, userId, 'read');
      const answer = accepted(await submit(request, dataset, model, request.query.priority ?? 0));
      return reply.code(answer.status).header('location', answer.location).send(answer.body);
    },
  );

  async function view(id: Types.ObjectId, userId: Types.ObjectId) {
    const request = await ClassificationRequest.findById(id).lean();
    if (!request || !(request.submitter.equals(userId) || request.dataset_owner.equals(userId))) {
      throw notFound('classification request');
    }
    const result = await ClassificationResult.findById(id).lean();
    // Caught between the result's insert and the request's update: finish the update now, so
    // a client that saw the outcome here also finds it when listing by state.
    if (result && !TERMINAL.has(request.state)) await syncRequestWithResult(db.models, id);
    return {
      id: String(request._id),
      // The result is the truth about the outcome; the request's state may lag it briefly.
      state: result ? result.state : request.state,
      dataset: String(request.dataset),
      model: String(request.model),
      submitter: String(request.submitter),
      priority: request.priority,
      image: {
        format: request.image.format,
        width: request.image.width,
        height: request.image.height,
        size: request.image.size,
        sha256: request.image.sha256,
      },
      result: result?.classification ?? null,
      errors: result?.errors ?? [],
      worker: result?.worker ?? request.worker ?? null,
      attempts: request.attempts,
      dispatches: request.dispatch_count,
      timings: (result?.timings ?? {}) as Record<string, number>,
      created_at: request.created_at,
      dispatched_at: request.dispatched_at,
      assigned_on: request.assigned_on,
      completed_at: result?.completed_on ?? null,
    };
  }

  app.get(
    '/classifications/:id',
    {
      schema: {
        tags: ['classifications'],
        summary: 'A classification request with its result; ?wait=N holds the answer until it ends or N seconds pass',
        params: IdParams,
        querystring: WaitQuery,
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
      for (;;) {
        // Register first: an event arriving while the state is read still wakes this wait.
        const pending = options.waiters.expect(request.params.id);
        try {
          const current = await view(id, userId);
          const remaining = deadline - Date.now();
          if (TERMINAL.has(current.state) || remaining <= 0 || closed || options.waiters.closed) return current;
          // Events are hints; re-reading at least every second covers a missed one.
          await pending.wait(Math.min(remaining, 1_000));
        } finally {
          pending.cancel();
        }
      }
    },
  );

  app.get(
    '/classifications',
    {
      schema: {
        tags: ['classifications'],
        summary: 'Requests I submitted or that went to my datasets, newest first',
        querystring: ListClassificationsQuery,
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
      if (q.state) filter.state = q.state;
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
            state: result ? result.state : i.state,
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
