import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { isDuplicateKeyError, type Database } from '@cxr/db';
import { conflict } from '../errors';
import { loadDataset } from '../lib/access';
import { page } from '../lib/paging';
import { datasetView } from '../lib/views';
import { requireUser } from '../plugins/auth';
import { answer, errorResponses, jsonBodyErrors, noContent } from '../openapi';
import {
  CreateDatasetBody,
  Dataset as DatasetSchema,
  DatasetPage,
  IdParams,
  ListQuery,
  UpdateDatasetBody,
} from '../schemas';

export const datasetsRoutes: FastifyPluginAsyncTypebox<{ db: Database; ratioTolerance: number }> = async (
  app,
  { db, ratioTolerance },
) => {
  const view = (dataset: Parameters<typeof datasetView>[0]) => datasetView(dataset, ratioTolerance);
  const { Dataset, ClassifierModel } = db.models;

  app.post(
    '/datasets',
    {
      schema: {
        tags: ['datasets'],
        operationId: 'createDataset',
        summary: 'Create a dataset owned by the caller',
        body: CreateDatasetBody,
        response: {
          201: answer(DatasetSchema, 'The dataset; Location names it'),
          ...jsonBodyErrors('CONFLICT'),
        },
      },
    },
    async (request, reply) => {
      const { userId } = requireUser(request);
      const body = request.body;
      try {
        const dataset = await Dataset.create({
          owner: userId,
          name: body.name,
          display_name: body.display_name,
          description: body.description ?? '',
          img_width: body.img_width,
          img_height: body.img_height,
          maintain_ratio: body.maintain_ratio ?? false,
          visibility: body.visibility ?? 'private',
        });
        return reply
          .code(201)
          .header('location', `/v1/datasets/${String(dataset._id)}`)
          .send(view(dataset.toObject()));
      } catch (error) {
        if (isDuplicateKeyError(error)) throw conflict(`you already have a dataset named '${body.name}'`);
        throw error;
      }
    },
  );

  app.get(
    '/datasets',
    {
      schema: {
        tags: ['datasets'],
        operationId: 'listDatasets',
        summary: 'My datasets and public ones, newest first',
        querystring: ListQuery,
        response: { 200: answer(DatasetPage, 'A page of datasets'), ...errorResponses('VALIDATION') },
      },
    },
    async (request) => {
      const { userId } = requireUser(request);
      const paging = page(request.query);
      const items = await Dataset.find({ $or: [{ owner: userId }, { visibility: 'public' }], ...paging.filter })
        .sort({ _id: -1 })
        .limit(request.query.limit)
        .lean();
      return { items: items.map(view), next: paging.next(items) };
    },
  );

  app.get(
    '/datasets/:id',
    {
      schema: {
        tags: ['datasets'],
        operationId: 'getDataset',
        summary: 'One dataset',
        params: IdParams,
        response: { 200: answer(DatasetSchema, 'The dataset'), ...errorResponses('VALIDATION', 'NOT_FOUND') },
      },
    },
    async (request) => {
      const { userId } = requireUser(request);
      return view(await loadDataset(db, request.params.id, userId, 'read'));
    },
  );

  app.patch(
    '/datasets/:id',
    {
      schema: {
        tags: ['datasets'],
        operationId: 'updateDataset',
        summary: 'Change a dataset (owner only)',
        params: IdParams,
        body: UpdateDatasetBody,
        response: {
          200: answer(DatasetSchema, 'The changed dataset'),
          ...jsonBodyErrors('NOT_FOUND', 'FORBIDDEN', 'CONFLICT'),
        },
      },
    },
    async (request) => {
      const { userId } = requireUser(request);
      const dataset = await loadDataset(db, request.params.id, userId, 'write');
      try {
        const updated = await Dataset.findByIdAndUpdate(dataset._id, { $set: request.body }, { new: true }).lean();
        return view(updated ?? dataset);
      } catch (error) {
        if (isDuplicateKeyError(error))
          throw conflict(`you already have a dataset named '${String(request.body.name)}'`);
        throw error;
      }
    },
  );

  app.delete(
    '/datasets/:id',
    {
      schema: {
        tags: ['datasets'],
        operationId: 'deleteDataset',
        summary: 'Delete a dataset that has no models (owner only)',
        params: IdParams,
        response: {
          204: noContent('Deleted'),
          ...errorResponses('VALIDATION', 'NOT_FOUND', 'FORBIDDEN', 'CONFLICT'),
        },
      },
    },
    async (request, reply) => {
      const { userId } = requireUser(request);
      const dataset = await loadDataset(db, request.params.id, userId, 'write');
      const models = await ClassifierModel.countDocuments({ dataset: dataset._id });
      if (models > 0) {
        throw conflict(
          `the dataset has ${models} model(s); requests refer to them, so a dataset with models is kept (retire its models instead)`,
        );
      }
      await Dataset.deleteOne({ _id: dataset._id });
      return reply.code(204).send();
    },
  );
};
