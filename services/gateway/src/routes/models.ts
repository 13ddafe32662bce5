import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Value } from '@sinclair/typebox/value';
import { InputSpec, inputSpecProblem } from '@cxr/contracts';
import type { Database } from '@cxr/db';
import type { ObjectStore } from '@cxr/storage';
import { Types } from 'mongoose';
import { badRequest, conflict, tooLarge } from '../errors';
import { loadDataset, loadModel } from '../lib/access';
import { page } from '../lib/paging';
import type { ConcurrencyLimit } from '../lib/concurrency-limit';
import { checkModelFile } from '../lib/model-check';
import { createNextVersion } from '../lib/model-versions';
import { MultipartReader } from '../lib/multipart';
import { modelView } from '../lib/views';
import { requireUser } from '../plugins/auth';
import { answer, errorResponses, fileAnswer, jsonBodyErrors } from '../openapi';
import { IdParams, ListQuery, Model, ModelForm, ModelPage, SetDefaultModelBody } from '../schemas';

export interface ModelsRoutesOptions {
  db: Database;
  store: ObjectStore;
  maxModelBytes: number;
  tmpDir: string | undefined;
  modelChecks: ConcurrencyLimit;
  modelCheckTimeoutMs: number;
  /** How long a client may send nothing while its upload is read. */
  bodyIdleMs: number;
  /** The server's bound on a request (its handlerTimeout, 0 for none); an upload has its model check on top. */
  handlerTimeoutMs: number;
}

/** Room for 10 000 labels of 128 characters in the 'labels' field. */
const MAX_FIELD_BYTES = 2 * 1024 * 1024;

const FORM_FIELDS = ['name', 'labels', 'input_spec'] as const;
type FormField = (typeof FORM_FIELDS)[number];

function parseLabels(raw: string | undefined): string[] {
  if (raw === undefined)
    throw badRequest("the form field 'labels' is required: a JSON array of label names, one per model output");
  let labels: unknown;
  try {
    labels = JSON.parse(raw);
  } catch {
    throw badRequest('\'labels\' must be a JSON array of strings, e.g. ["normal","covid"]');
  }
  if (!Array.isArray(labels) || labels.length === 0 || labels.length > 10000) {
    throw badRequest("'labels' must be a JSON array of 1 to 10000 strings");
  }
  for (const label of labels) {
    if (typeof label !== 'string' || label.trim() === '' || label.length > 128) {
      throw badRequest('every label must be a non-empty string of at most 128 characters');
    }
  }
  if (new Set(labels).size !== labels.length) throw badRequest('labels must be unique');
  return labels as string[];
}

function parseInputSpec(raw: string | undefined): InputSpec {
  if (raw === undefined) {
    throw badRequest(
      'the form field \'input_spec\' is required: JSON like {"layout":"NCHW","channels":1,"width":224,"height":224,"mean":[0.5],"std":[0.25]}',
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw badRequest("'input_spec' must be a JSON object");
  }
  const spec = Value.Default(InputSpec, parsed);
  if (!Value.Check(InputSpec, spec)) {
    const first = Value.Errors(InputSpec, spec).First();
    throw badRequest(`input_spec${first?.path ?? ''}: ${first?.message ?? 'is invalid'}`);
  }
  const problem = inputSpecProblem(spec);
  if (problem) throw badRequest(problem);
  return spec;
}

export const modelsRoutes: FastifyPluginAsyncTypebox<ModelsRoutesOptions> = async (app, options) => {
  const { db, store } = options;
  const { ClassifierModel, Dataset } = db.models;

  app.post(
    '/datasets/:id/models',
    {
      schema: {
        tags: ['models'],
        summary: 'Upload an ONNX model to a dataset (owner only)',
        description:
          "multipart/form-data with fields 'labels' (JSON array, one per output), 'input_spec' (JSON), optional 'name', " +
          "and the file in 'file'. The file streams to disk and S3, never whole into memory; it is loaded in ONNX Runtime " +
          'and run once before it is accepted.',
        operationId: 'uploadModel',
        params: IdParams,
        consumes: ['multipart/form-data'],
        response: {
          201: answer(Model, 'The model, checked and stored; Location names it'),
          ...errorResponses(
            'VALIDATION',
            'BAD_REQUEST',
            'MALFORMED_MULTIPART',
            'NOT_FOUND',
            'FORBIDDEN',
            'REQUEST_TIMEOUT',
            'TOO_LARGE',
            'FST_ERR_CTP_INVALID_MEDIA_TYPE',
            'MODEL_NOT_LOADABLE',
            'MODEL_INPUTS',
            'MODEL_OUTPUTS',
            'MODEL_INPUT_TYPE',
            'MODEL_INPUT_SHAPE',
            'MODEL_RUN_FAILED',
            'MODEL_OUTPUT_TYPE',
            'LABELS_MISMATCH',
            'MODEL_CHECK_TIMEOUT',
            'MODEL_CHECK_FAILED',
          ),
        },
      },
      config: { multipartForm: ModelForm },
      // The server's bound on a request, plus the model check's own.
      ...(options.handlerTimeoutMs > 0 && { handlerTimeout: options.handlerTimeoutMs + options.modelCheckTimeoutMs }),
    },
    async (request, reply) => {
      const { userId } = requireUser(request);
      const dataset = await loadDataset(db, request.params.id, userId, 'write');
      if (!request.isMultipart()) throw badRequest('send the model as multipart/form-data');

      const dir = await mkdtemp(join(options.tmpDir ?? tmpdir(), 'cxr-model-'));
      const path = join(dir, 'model.onnx');
      const form = new MultipartReader(request, {
        limits: {
          files: 1,
          fields: FORM_FIELDS.length,
          parts: FORM_FIELDS.length + 1,
          fileSize: options.maxModelBytes,
          fieldSize: MAX_FIELD_BYTES,
        },
        form: `the fields ${FORM_FIELDS.join(', ')} and one file, in the file field 'file'`,
        tooLargeMessage: `the model is larger than the limit of ${options.maxModelBytes} bytes`,
        idleMs: options.bodyIdleMs,
      });
      try {
        const fields: Partial<Record<FormField, string>> = {};
        let sha256: string | null = null;
        for (let part = await form.next(); part; part = await form.next()) {
          if (part.type === 'file') {
            if (part.fieldname !== 'file') {
              throw badRequest(`unexpected file field '${part.fieldname}'; send the model in 'file'`);
            }
            const hash = createHash('sha256');
            const tap = new Transform({
              transform(chunk: Buffer, _enc, done) {
                hash.update(chunk);
                done(null, chunk);
              },
            });
            await form.read(part, (file) => pipeline(file.file, tap, createWriteStream(path)));
            if (part.file.truncated)
              throw tooLarge(`the model is larger than the limit of ${options.maxModelBytes} bytes`);
            sha256 = hash.digest('hex');
          } else {
            const name = part.fieldname as FormField;
            if (!FORM_FIELDS.includes(name)) {
              throw badRequest(`unexpected field '${part.fieldname}'; the fields are ${FORM_FIELDS.join(', ')}`);
            }
            if (fields[name] !== undefined) throw badRequest(`the field '${name}' is sent twice`);
            if (part.valueTruncated) throw tooLarge(`the field '${name}' is longer than ${MAX_FIELD_BYTES} bytes`);
            // A field sent as application/json arrives parsed; the checks below read its text.
            fields[name] = typeof part.value === 'string' ? part.value : JSON.stringify(part.value);
          }
        }
        if (!sha256) throw badRequest("no model file: send the ONNX file in the form field 'file'");
        const size = (await stat(path)).size;
        if (size === 0) throw badRequest('the model file is empty');
        const labels = parseLabels(fields.labels);
        const spec = parseInputSpec(fields.input_spec);
        const name = (fields.name ?? 'model').slice(0, 100) || 'model';

        const checked = await options.modelChecks.run(() =>
          checkModelFile(path, labels, spec, options.modelCheckTimeoutMs),
        );

        const modelId = new Types.ObjectId();
        const key = `models/${String(dataset._id)}/${String(modelId)}.onnx`;
        await store.put(key, createReadStream(path), {
          contentType: 'application/octet-stream',
          contentLength: size,
          metadata: { sha256 },
        });
        let created;
        try {
          created = await createNextVersion(db.models, {
            _id: modelId,
            dataset: dataset._id,
            dataset_owner: dataset.owner,
            uploaded_by: userId,
            name,
            blob: { key, size, sha256 },
            labels,
            input_spec: spec,
            input_name: checked.inputName,
            output_name: checked.outputName,
          });
        } catch (error) {
          await store
            .delete(key)
            .catch((cleanup: unknown) => request.log.error({ err: cleanup, key }, 'orphan model blob'));
          throw error;
        }
        // The first model of a dataset becomes its default.
        await Dataset.updateOne({ _id: dataset._id, default_model: null }, { $set: { default_model: modelId } });
        const fresh = await Dataset.findById(dataset._id, { default_model: 1 }).lean();
        return reply
          .code(201)
          .header('location', `/v1/models/${String(modelId)}`)
          .send(modelView(created.toObject(), fresh?.default_model));
      } finally {
        form.close();
        await rm(dir, { recursive: true, force: true });
      }
    },
  );

  app.get(
    '/datasets/:id/models',
    {
      schema: {
        tags: ['models'],
        operationId: 'listModels',
        summary: "A dataset's models, newest first",
        params: IdParams,
        querystring: ListQuery,
        response: { 200: answer(ModelPage, 'A page of models'), ...errorResponses('VALIDATION', 'NOT_FOUND') },
      },
    },
    async (request) => {
      const { userId } = requireUser(request);
      const dataset = await loadDataset(db, request.params.id, userId, 'read');
      const paging = page(request.query);
      const items = await ClassifierModel.find({ dataset: dataset._id, ...paging.filter })
        .sort({ _id: -1 })
        .limit(request.query.limit)
        .lean();
      return { items: items.map((m) => modelView(m, dataset.default_model)), next: paging.next(items) };
    },
  );

  app.get(
    '/models/:id',
    {
      schema: {
        tags: ['models'],
        operationId: 'getModel',
        summary: 'One model',
        params: IdParams,
        response: { 200: answer(Model, 'The model'), ...errorResponses('VALIDATION', 'NOT_FOUND') },
      },
    },
    async (request) => {
      const { userId } = requireUser(request);
      const { model, dataset } = await loadModel(db, request.params.id, userId, 'read');
      return modelView(model, dataset.default_model);
    },
  );

  app.get(
    '/models/:id/file',
    {
      schema: {
        tags: ['models'],
        operationId: 'downloadModel',
        summary: 'Download the ONNX file',
        params: IdParams,
        response: {
          200: fileAnswer('The ONNX file; X-Content-SHA256 is its SHA-256 (hex)', 'application/octet-stream'),
          ...errorResponses('VALIDATION', 'NOT_FOUND'),
        },
      },
    },
    async (request, reply) => {
      const { userId } = requireUser(request);
      const { model } = await loadModel(db, request.params.id, userId, 'read');
      const { stream } = await store.getStream(model.blob.key);
      return reply
        .header('content-type', 'application/octet-stream')
        .header('content-length', String(model.blob.size))
        .header(
          'content-disposition',
          `attachment; filename="${model.name.replace(/[^A-Za-z0-9._-]/g, '_')}-v${model.version}.onnx"`,
        )
        .header('x-content-sha256', model.blob.sha256)
        .send(stream);
    },
  );

  app.post(
    '/models/:id/retire',
    {
      schema: {
        tags: ['models'],
        operationId: 'retireModel',
        summary: 'Retire a model: no new classifications go to it (owner only)',
        params: IdParams,
        response: {
          200: answer(Model, 'The retired model'),
          ...errorResponses('VALIDATION', 'NOT_FOUND', 'FORBIDDEN', 'CONFLICT'),
        },
      },
    },
    async (request) => {
      const { userId } = requireUser(request);
      const { model, dataset } = await loadModel(db, request.params.id, userId, 'write');
      if (dataset.default_model && dataset.default_model.equals(model._id)) {
        throw conflict("this is the dataset's default model; choose another default before retiring it");
      }
      const updated = await ClassifierModel.findOneAndUpdate(
        { _id: model._id },
        { $set: { status: 'retired', retired_on: model.retired_on ?? new Date() } },
        { new: true },
      ).lean();
      return modelView(updated ?? model, dataset.default_model);
    },
  );

  app.put(
    '/datasets/:id/default-model',
    {
      schema: {
        tags: ['models'],
        operationId: 'setDefaultModel',
        summary: "Choose the dataset's default model (owner only)",
        params: IdParams,
        body: SetDefaultModelBody,
        response: {
          200: answer(Model, 'The new default model'),
          ...jsonBodyErrors('BAD_REQUEST', 'NOT_FOUND', 'FORBIDDEN', 'CONFLICT'),
        },
      },
    },
    async (request) => {
      const { userId } = requireUser(request);
      const dataset = await loadDataset(db, request.params.id, userId, 'write');
      const model = await ClassifierModel.findOne({
        _id: new Types.ObjectId(request.body.model_id),
        dataset: dataset._id,
      }).lean();
      if (!model) throw badRequest('model_id is not a model of this dataset');
      if (model.status !== 'active') throw conflict('a retired model cannot be the default');
      await Dataset.updateOne({ _id: dataset._id }, { $set: { default_model: model._id } });
      return modelView(model, model._id);
    },
  );
};
