import { randomUUID } from 'node:crypto';
import type { Broker } from '@cxr/broker';
import { JOB_ROUTING_KEY, Topology } from '@cxr/broker';
import { encodeMessage, hashSecret, newDispatchToken, type InputSpec, type JobMessage } from '@cxr/contracts';
import { isDuplicateKeyError, type Database } from '@cxr/db';
import type { Logger } from '@cxr/logging';
import type { Types } from 'mongoose';

export interface Dispatcher {
  /**
   * Makes dispatch number `previousDispatches + 1` of the request: a new token, then the job,
   * published with a confirm. Callers pass the count they saw, so two gateways that saw the
   * same state race on the unique (request, seq) index and only one publishes; the loser gets
   * false. Throws when the broker does not confirm: the request keeps published_at unset and
   * the sweeper dispatches it again later.
   */
  dispatch(requestId: Types.ObjectId, previousDispatches: number): Promise<boolean>;
}

export function createDispatcher(deps: {
  db: Database;
  broker: Broker;
  logger: Logger;
  tokenTtlSeconds: number;
}): Dispatcher {
  const { ClassificationRequest, ClassifierModel, Dataset, DispatchToken } = deps.db.models;
  return {
    async dispatch(requestId, previousDispatches) {
      const request = await ClassificationRequest.findById(requestId).lean();
      if (!request) return false;
      const [model, dataset] = await Promise.all([
        ClassifierModel.findById(request.model).lean(),
        Dataset.findById(request.dataset, { maintain_ratio: 1 }).lean(),
      ]);
      if (!model) throw new Error(`model ${String(request.model)} of request ${String(requestId)} is missing`);

      const seq = previousDispatches + 1;
      const token = newDispatchToken();
      const issuedAt = new Date();
      try {
        await DispatchToken.create({
          _id: hashSecret(token),
          request: requestId,
          seq,
          issued_at: issuedAt,
          expires_at: new Date(issuedAt.getTime() + deps.tokenTtlSeconds * 1000),
        });
      } catch (error) {
        if (!isDuplicateKeyError(error)) throw error;
        // Someone else made this dispatch. Make sure the count says so even if that process
        // died before updating it, or every later attempt would collide on the same seq.
        await ClassificationRequest.updateOne({ _id: requestId }, { $max: { dispatch_count: seq } });
        return false;
      }
      // Filters on _id alone throughout: FerretDB scans the collection for any other filter.
      await ClassificationRequest.updateOne(
        { _id: requestId },
        { $max: { dispatch_count: seq }, $set: { dispatched_at: issuedAt, published_at: null } },
      );

      const job: JobMessage = {
        v: 1,
        type: 'cxr.job',
        requestId: String(requestId),
        correlationId: request.correlation_id,
        dispatchToken: token,
        dispatchedAt: issuedAt.toISOString(),
        model: {
          id: String(model._id),
          key: model.blob.key,
          sha256: model.blob.sha256,
          size: model.blob.size,
          labels: model.labels,
          inputSpec: model.input_spec as InputSpec,
        },
        image: {
          key: request.image.key,
          sha256: request.image.sha256,
          size: request.image.size,
          format: request.image.format,
        },
        keepAspectRatio: dataset?.maintain_ratio ?? false,
      };
      await deps.broker.publish(Topology.jobsExchange, JOB_ROUTING_KEY, encodeMessage(job), {
        messageId: randomUUID(),
        correlationId: request.correlation_id,
      });
      await ClassificationRequest.updateOne({ _id: requestId }, { $set: { published_at: new Date() } });
      deps.logger.debug({ requestId: String(requestId), seq }, 'job dispatched');
      return true;
    },
  };
}
