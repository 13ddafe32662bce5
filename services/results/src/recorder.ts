import type { ConsumeMessage } from 'amqplib';
import { Topology, type Broker, type Disposition } from '@cxr/broker';
import { decodeMessage, hashSecret, JobMessage, ResultMessage } from '@cxr/contracts';
import { recordOutcome, syncRequestWithResult, Types, type Database, type Outcome } from '@cxr/db';
import type { Logger } from '@cxr/logging';

export type RefusalReason = 'forged' | 'stale' | 'replayed' | 'mismatched';

export interface RecorderStats {
  recorded: number;
  duplicates: number;
  started: number;
  deadLettered: number;
  invalid: number;
  refused: Record<RefusalReason, number>;
}

export function newRecorderStats(): RecorderStats {
  return {
    recorded: 0,
    duplicates: 0,
    started: 0,
    deadLettered: 0,
    invalid: 0,
    refused: { forged: 0, stale: 0, replayed: 0, mismatched: 0 },
  };
}

/**
 * Records results. A result counts only with the right, unexpired, unused dispatch token of
 * its request; anything else is refused, logged, counted and acknowledged (it would never
 * become valid by retrying). Recording is idempotent: the primary key of the result (the
 * request id) decides, and the token is marked used only after the result is stored, so a crash
 * in between is repaired by the redelivery.
 */
export function createRecorder(deps: { db: Database; broker: Broker; logger: Logger }, stats: RecorderStats) {
  const { DispatchToken, ClassificationRequest, ClassificationResult } = deps.db.models;
  const { logger } = deps;

  /** The presented token's record if it belongs to the request and has not expired. */
  async function findToken(requestId: string, token: string) {
    const found = await DispatchToken.findById(hashSecret(token)).lean();
    if (!found || String(found.request) !== requestId) return { refused: 'forged' as const };
    if (found.expires_at.getTime() < Date.now()) return { refused: 'stale' as const };
    return { token: found };
  }

  function refuse(reason: RefusalReason, context: Record<string, unknown>): Disposition {
    stats.refused[reason] += 1;
    logger.warn({ ...context, reason }, 'result refused');
    return 'ack';
  }

  /** Tells waiting gateways the request ended. A hint: losing it only delays a ?wait. */
  async function announce(requestId: string, state: string): Promise<void> {
    try {
      await deps.broker.publish(Topology.eventsExchange, '', Buffer.from(JSON.stringify({ requestId, state })), {
        persistent: false,
      });
    } catch (error) {
      logger.warn({ err: error, requestId }, 'could not announce the outcome');
    }
  }

  /**
   * Records the outcome (the result's primary key decides who wins), then spends the token
   * that came with it, then wakes waiting gateways. Returns whether this outcome was the one
   * recorded.
   */
  async function settle(outcome: Omit<Outcome, 'dispatchTokenId'>, tokenId: string): Promise<boolean> {
    const { recorded, state } = await recordOutcome(deps.db.models, { ...outcome, dispatchTokenId: tokenId });
    await DispatchToken.updateOne({ _id: tokenId }, { $set: { used_at: new Date() } });
    await announce(String(outcome.requestId), state);
    return recorded;
  }

  async function invalid(message: ConsumeMessage, queue: string, reason: string): Promise<Disposition> {
    stats.invalid += 1;
    logger.warn({ queue, reason }, 'invalid message sent to the invalid queue');
    await deps.broker.publishInvalid(message, queue, reason);
    return 'ack';
  }

  async function handleResult(message: ConsumeMessage): Promise<Disposition> {
    const decoded = decodeMessage(ResultMessage, message.content);
    if (!decoded.ok) return invalid(message, Topology.resultsQueue, decoded.reason);
    const result = decoded.value;
    if (result.outcome === 'classified' && !result.classification) {
      return invalid(message, Topology.resultsQueue, 'a classified result needs a classification');
    }
    if (result.outcome === 'failed' && result.errors.length === 0) {
      return invalid(message, Topology.resultsQueue, 'a failed result needs at least one error');
    }
    const context = {
      requestId: result.requestId,
      correlationId: result.correlationId,
      worker: result.worker,
      outcome: result.outcome,
    };
    const check = await findToken(result.requestId, result.dispatchToken);
    if (!check.token) return refuse(check.refused, context);
    if (check.token.used_at) {
      // A `started` handled after its own result, or the very result recorded with this token
      // delivered again, is no attack; any other use of a spent token is a replay.
      const own = await ClassificationResult.findById(result.requestId, {
        dispatch_token: 1,
        state: 1,
        classification: 1,
      }).lean();
      const sameAsRecorded =
        own?.dispatch_token === check.token._id &&
        (result.outcome === 'started' ||
          (own.state === result.outcome && own.classification?.label === result.classification?.label));
      if (sameAsRecorded) {
        stats.duplicates += 1;
        return 'ack';
      }
      return refuse('replayed', context);
    }
    const requestId = new Types.ObjectId(result.requestId);
    const request = await ClassificationRequest.findById(requestId, { model: 1 }).lean();
    if (!request || String(request.model) !== result.modelId) return refuse('mismatched', context);

    if (result.outcome === 'started') {
      // Filters on _id alone: FerretDB scans for anything more. If the outcome is recorded
      // between these steps, the last one puts the request's state back to the result's.
      await ClassificationRequest.updateOne(
        { _id: requestId },
        { $set: { state: 'assigned', assigned_on: new Date(result.at), worker: result.worker }, $inc: { attempts: 1 } },
      );
      await syncRequestWithResult(deps.db.models, requestId);
      stats.started += 1;
      return 'ack';
    }

    const recorded = await settle(
      {
        requestId,
        state: result.outcome,
        classification: result.classification,
        errors: result.errors,
        modelId: request.model,
        worker: result.worker,
        source: 'worker',
        timings: result.timings,
      },
      check.token._id,
    );
    if (recorded) {
      stats.recorded += 1;
      logger.info({ ...context, label: result.classification?.label }, 'result recorded');
    } else {
      stats.duplicates += 1;
      logger.info(context, 'request already had its result; this one changed nothing');
    }
    return 'ack';
  }

  /** A job dead-lettered after its delivery limit: its request fails with the reason. */
  async function handleDeadJob(message: ConsumeMessage): Promise<Disposition> {
    const decoded = decodeMessage(JobMessage, message.content);
    if (!decoded.ok) return invalid(message, Topology.jobsDeadQueue, decoded.reason);
    const job = decoded.value;
    const context = { requestId: job.requestId, correlationId: job.correlationId, source: 'dead-letter' };
    const check = await findToken(job.requestId, job.dispatchToken);
    const request = await ClassificationRequest.findById(job.requestId, { dispatch_count: 1 }).lean();
    if (!check.token || check.token.used_at || !request || check.token.seq !== request.dispatch_count) {
      // A result arrived after all, or a newer dispatch of the request is still under way.
      logger.info({ ...context, reason: check.refused ?? 'superseded' }, 'dead-lettered job needs no action');
      return 'ack';
    }
    const deaths = (message.properties.headers?.['x-death'] as { count?: number; reason?: string }[] | undefined) ?? [];
    const reason = deaths[0]?.reason ?? 'dead-lettered';
    const deliveries = message.properties.headers?.['x-delivery-count'] as number | undefined;
    const recorded = await settle(
      {
        requestId: new Types.ObjectId(job.requestId),
        state: 'failed',
        errors: [
          {
            code: 'DELIVERY_LIMIT',
            message: `no worker could finish this job (${reason}${deliveries !== undefined ? ` after ${String(deliveries)} redeliveries` : ''})`,
          },
        ],
        modelId: new Types.ObjectId(job.model.id),
        worker: 'dead-letter',
        source: 'dead-letter',
      },
      check.token._id,
    );
    if (recorded) stats.deadLettered += 1;
    logger.warn({ ...context, reason, recorded }, 'dead-lettered job failed its request');
    return 'ack';
  }

  return { handleResult, handleDeadJob };
}
