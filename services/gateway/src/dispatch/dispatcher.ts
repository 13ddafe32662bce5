import { randomUUID } from 'node:crypto';
import type { Broker } from '@cxr/broker';
import { JOB_ROUTING_KEY, Topology } from '@cxr/broker';
import { encodeMessage, hashSecret, newDispatchToken, type InputSpec, type JobMessage } from '@cxr/contracts';
import {
  dispatchClaimId,
  isDuplicateKeyError,
  type ClassificationRequests,
  type ClassifierModel,
  type Models,
  type RequestRecord,
} from '@cxr/db';
import type { Logger } from '@cxr/logging';
import { inSpan, parseTraceparent, TRACEPARENT, type Tracer } from '@cxr/tracing';
import type { Types } from 'mongoose';

/** What a job needs besides the request: the model to run and how to fit the image to it. */
export interface JobTarget {
  model: Pick<ClassifierModel, 'blob' | 'labels' | 'input_spec'> & { _id: Types.ObjectId };
  keepAspectRatio: boolean;
  /** The trace the job continues (the submission's HTTP request); a redispatch starts its own. */
  traceparent?: string;
}

export interface DispatchToken {
  /** The secret that travels in the job; never stored. */
  secret: string;
  /** What the request stores: the hash, the dispatch number and the expiry. */
  record: { hash: string; seq: number; expires_at: Date };
}

/**
 * Sends a request's job to the workers: a new dispatch token per job, publisher confirms, and
 * the lifecycle told what happened. Used for the first dispatch (made with the request) and by
 * the sweeper for dispatches whose timer fell due.
 */
export class Dispatcher {
  private readonly sending = new Set<Promise<void>>();

  constructor(
    private readonly deps: {
      requests: ClassificationRequests;
      models: Models;
      broker: Broker;
      logger: Logger;
      tracer: Tracer;
    },
  ) {}

  newToken(seq: number): DispatchToken {
    const secret = newDispatchToken();
    const expiresAt = new Date(this.deps.requests.now().getTime() + this.deps.requests.policy.tokenTtlMs);
    return { secret, record: { hash: hashSecret(secret), seq, expires_at: expiresAt } };
  }

  /**
   * Publishes job `seq` of a stored request and records the broker's confirm. Throws when the
   * broker does not confirm: the request's publish timer then dispatches it again.
   */
  async publish(doc: RequestRecord, token: DispatchToken, target: JobTarget): Promise<void> {
    const { model } = target;
    const job: JobMessage = {
      v: 1,
      type: 'cxr.job',
      requestId: String(doc._id),
      correlationId: doc.correlation_id,
      dispatchToken: token.secret,
      dispatchedAt: this.deps.requests.now().toISOString(),
      model: {
        id: String(model._id),
        key: model.blob.key,
        sha256: model.blob.sha256,
        size: model.blob.size,
        labels: model.labels,
        inputSpec: model.input_spec as InputSpec,
      },
      image: { key: doc.image.key, sha256: doc.image.sha256, size: doc.image.size, format: doc.image.format },
      keepAspectRatio: target.keepAspectRatio,
    };
    const span = this.deps.tracer.start('publish job', parseTraceparent(target.traceparent), {
      'cxr.request_id': job.requestId,
      'cxr.dispatch': token.record.seq,
    });
    await inSpan(span, () =>
      this.deps.broker.publish(Topology.jobsExchange, JOB_ROUTING_KEY, encodeMessage(job), {
        messageId: randomUUID(),
        correlationId: doc.correlation_id,
        headers: { [TRACEPARENT]: span.traceparent() },
      }),
    );
    await this.deps.requests.apply(
      doc,
      { type: 'published', seq: token.record.seq },
      { set: { published_at: this.deps.requests.now() } },
    );
  }

  /**
   * Publishes the first job of a request just stored without making its submitter wait for the
   * broker's confirm: the stored request's publish timer already covers a publish that never
   * happens (this gateway dies, the broker is away). `onFailure` may keep the job for the broker's
   * return. `settle` waits for the ones under way.
   */
  publishSoon(doc: RequestRecord, token: DispatchToken, target: JobTarget, onFailure: (error: unknown) => void): void {
    const sending: Promise<void> = this.publish(doc, token, target)
      .catch(onFailure)
      .finally(() => this.sending.delete(sending));
    this.sending.add(sending);
  }

  /** Waits for the publishes `publishSoon` started (each bounded by the broker's confirm timeout). */
  async settle(): Promise<void> {
    await Promise.all([...this.sending]);
  }

  /**
   * Makes dispatch number `seq` (2 and up) of a request whose timer fell due. Every gateway
   * replica's sweeper may try; the claim's primary key lets one of them do it (false for the others).
   */
  async redispatch(doc: RequestRecord, seq: number): Promise<boolean> {
    const { models, requests } = this.deps;
    try {
      await models.DispatchClaim.create({ _id: dispatchClaimId(doc._id, seq), claimed_at: requests.now() });
    } catch (error) {
      if (isDuplicateKeyError(error)) return false;
      throw error;
    }
    const [model, dataset] = await Promise.all([
      models.ClassifierModel.findById(doc.model, { blob: 1, labels: 1, input_spec: 1 }).lean(),
      models.Dataset.findById(doc.dataset, { maintain_ratio: 1 }).lean(),
    ]);
    if (!model) throw new Error(`model ${String(doc.model)} of request ${String(doc._id)} is missing`);
    const token = this.newToken(seq);
    const { doc: dispatching, transition } = await requests.apply(
      doc,
      { type: 'dispatching', seq },
      { set: { dispatched_at: requests.now() }, push: { tokens: token.record } },
    );
    if (!transition.changed) return false;
    await this.publish(dispatching, token, { model, keepAspectRatio: dataset?.maintain_ratio ?? false });
    this.deps.logger.info({ requestId: String(doc._id), seq }, 'request dispatched again');
    return true;
  }
}
