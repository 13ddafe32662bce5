import { Topology, type Broker, type ConsumeMessage, type Disposition } from '@cxr/broker';
import { decodeMessage, hashSecret, JobMessage, ResultMessage } from '@cxr/contracts';
import { Types, type ClassificationRequests, type Outcome, type RequestRecord } from '@cxr/db';
import type { Logger } from '@cxr/logging';
import { inSpan, parseTraceparent, TRACEPARENT, type Tracer } from '@cxr/tracing';
import { isTerminal } from '@cxr/request-lifecycle';
import { KeyedQueue } from './keyed-queue';
import type { RefusalReason, ResultsMetrics } from './metrics';
import { labelProblem, type ModelLabels } from './model-labels';

/** Started requests remembered at most: a few minutes of results at the highest rates. */
const STARTED_KEPT = 10_000;

type TokenCheck = { token: RequestRecord['tokens'][number]; request: RequestRecord } | { refused: RefusalReason };

/**
 * Records results. A result counts only with a dispatch token of its request that is valid and
 * not expired; anything else is refused, logged, counted and acknowledged (it would never become
 * valid by retrying). Recording is idempotent: the primary key of the result (the request id)
 * decides. Messages about one request are handled one at a time in this process, so a job's
 * `started` and its result never race each other here.
 */
export function createRecorder(
  deps: { requests: ClassificationRequests; broker: Broker; logger: Logger; modelLabels: ModelLabels; tracer: Tracer },
  metrics: ResultsMetrics,
) {
  const { requests, logger } = deps;
  const perRequest = new KeyedQueue();
  // Requests this process saw start, as it left them: a job's result then needs no read of its
  // request. Only a record that holds the presented token is used (a later dispatch's token
  // sends it to the database); the state it shows is only a starting point, as every write is
  // conditional on the state it read or decided by the result's primary key.
  const started = new Map<string, RequestRecord>();
  const remember = (doc: RequestRecord) => {
    started.delete(String(doc._id));
    started.set(String(doc._id), doc);
    if (started.size > STARTED_KEPT) started.delete(started.keys().next().value as string);
  };

  /** The request and the presented token's entry in it, if the token is one of its own and unexpired. */
  async function checkToken(requestId: string, presented: string): Promise<TokenCheck> {
    const hash = hashSecret(presented);
    const known = started.get(requestId);
    const request = known?.tokens.some((t) => t.hash === hash)
      ? known
      : await requests.get(new Types.ObjectId(requestId));
    const token = request?.tokens.find((t) => t.hash === hash);
    if (!request || !token) return { refused: 'forged' };
    if (token.expires_at.getTime() < requests.now().getTime()) return { refused: 'stale' };
    return { token, request };
  }

  function refuse(reason: RefusalReason, context: Record<string, unknown>): Disposition {
    metrics.refused.inc({ reason });
    logger.warn({ ...context, reason }, 'result refused');
    return 'ack';
  }

  /**
   * Tells the gateways the request ended. A hint: losing it only delays a ?wait, or a webhook
   * (`webhook: true`) until the next sweep.
   */
  async function announce(requestId: string, state: string, webhook: boolean): Promise<void> {
    try {
      const event = webhook ? { requestId, state, webhook } : { requestId, state };
      await deps.broker.publish(Topology.eventsExchange, '', Buffer.from(JSON.stringify(event)), {
        persistent: false,
      });
    } catch (error) {
      logger.warn({ err: error, requestId }, 'could not announce the outcome');
    }
  }

  async function invalid(message: ConsumeMessage, queue: string, reason: string): Promise<Disposition> {
    metrics.invalid.inc();
    logger.warn({ queue, reason }, 'invalid message sent to the invalid queue');
    await deps.broker.publishInvalid(message, queue, reason);
    return 'ack';
  }

  async function record(result: ResultMessage, context: Record<string, unknown>): Promise<Disposition> {
    const check = await checkToken(result.requestId, result.dispatchToken);
    if ('refused' in check) return refuse(check.refused, context);
    const { token, request } = check;
    if (String(request.model) !== result.modelId) return refuse('mismatched', context);
    if (result.classification) {
      // Even a genuine token records only what the model can say: its own labels, each scored once.
      const labels = await deps.modelLabels.get(result.modelId);
      const problem = labels ? labelProblem(labels, result.classification) : 'the model is missing';
      if (problem) return refuse('mislabelled', { ...context, problem });
    }

    if (isTerminal(request.state)) {
      // The outcome is recorded. The same result delivered again, a `started` handled after its
      // own result, or another dispatch's worker finishing late are no attack; anything else
      // presenting the token that recorded the outcome is a replay.
      const recorded = await requests.result(request._id);
      const sameAsRecorded =
        result.outcome === 'started' ||
        recorded?.dispatch_token !== token.hash ||
        (recorded.state === result.outcome && recorded.classification?.label === result.classification?.label);
      if (!sameAsRecorded) return refuse('replayed', context);
      metrics.duplicates.inc();
      return 'ack';
    }

    if (result.outcome === 'started') {
      const { doc } = await requests.apply(
        request,
        { type: 'started', seq: token.seq },
        { set: { assigned_on: new Date(result.at), worker: result.worker } },
      );
      if (!isTerminal(doc.state)) remember(doc);
      metrics.started.inc();
      return 'ack';
    }

    const outcome: Outcome = {
      state: result.outcome,
      classification: result.classification,
      errors: result.errors,
      modelId: request.model,
      worker: result.worker,
      source: 'worker',
      dispatchToken: token.hash,
      timings: result.timings,
    };
    const { recorded, result: winner } = await requests.recordOutcome(request, outcome);
    started.delete(result.requestId);
    if (recorded) {
      metrics.recorded.inc({ outcome: result.outcome });
      metrics.endToEnd.observe(
        { outcome: result.outcome },
        Math.max(0, requests.now().getTime() - request.created_at.getTime()) / 1000,
      );
    }
    await announce(result.requestId, winner.state, Boolean(request.webhook));
    if (recorded) {
      logger.info({ ...context, label: result.classification?.label }, 'result recorded');
    } else {
      metrics.duplicates.inc();
      logger.info(context, 'request already had its result; this one changed nothing');
    }
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
    // The span continues the job's trace (the inference span that published this result).
    const span = deps.tracer.start('record result', traceOf(message), {
      'cxr.request_id': result.requestId,
      'cxr.outcome': result.outcome,
    });
    const context = {
      requestId: result.requestId,
      correlationId: result.correlationId,
      worker: result.worker,
      outcome: result.outcome,
      trace_id: span.context.traceId,
    };
    return inSpan(span, () => perRequest.run(result.requestId, () => record(result, context)));
  }

  /**
   * A job dead-lettered after its delivery limit. Its request fails with the reason, but only
   * after the lifecycle's grace, so a result published just before still wins.
   */
  async function handleDeadJob(message: ConsumeMessage): Promise<Disposition> {
    const decoded = decodeMessage(JobMessage, message.content);
    if (!decoded.ok) return invalid(message, Topology.jobsDeadQueue, decoded.reason);
    const job = decoded.value;
    return perRequest.run(job.requestId, async (): Promise<Disposition> => {
      const context = {
        requestId: job.requestId,
        correlationId: job.correlationId,
        source: 'dead-letter',
        trace_id: traceOf(message)?.traceId,
      };
      const check = await checkToken(job.requestId, job.dispatchToken);
      if ('refused' in check) {
        logger.info({ ...context, reason: check.refused }, 'dead-lettered job needs no action');
        return 'ack';
      }
      started.delete(job.requestId);
      const { transition } = await requests.apply(check.request, { type: 'dead-lettered', seq: check.token.seq });
      if (transition.changed) metrics.deadLettered.inc();
      const deaths = (message.properties.headers?.['x-death'] as { reason?: string }[] | undefined) ?? [];
      logger.warn(
        { ...context, reason: deaths[0]?.reason ?? 'dead-lettered', failsAt: transition.view.timer?.dueAt },
        transition.changed ? 'job dead-lettered; its request fails after the grace' : 'dead-lettered job superseded',
      );
      return 'ack';
    });
  }

  return { handleResult, handleDeadJob };
}

function traceOf(message: ConsumeMessage) {
  return parseTraceparent(message.properties.headers?.[TRACEPARENT]);
}
