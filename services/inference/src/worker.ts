import { randomUUID } from 'node:crypto';
import { Topology, RESULT_ROUTING_KEY, type Broker, type ConsumeMessage, type Disposition } from '@cxr/broker';
import {
  decodeMessage,
  encodeMessage,
  inputShape,
  JobMessage,
  type Classification,
  type ProcessingError,
  type ResultMessage,
  type Timings,
} from '@cxr/contracts';
import type { Logger } from '@cxr/logging';
import type { ObjectStore } from '@cxr/storage';
import { inSpan, parseTraceparent, TRACEPARENT, type Span, type Tracer } from '@cxr/tracing';
import type { ConcurrencyLimit } from './concurrency-limit';
import { UnrecoverableJobError } from './errors';
import { InferenceRunError, type InferenceEngine } from './inference-engine';
import type { InferenceMetrics } from './metrics';
import type { ModelCache } from './model-cache';
import { preprocess } from './preprocess';
import type { DependencyWatch } from '@cxr/lifecycle';
import { fetchVerified } from './verified-blob';
import { classify } from './scores';

export interface WorkerDeps {
  broker: Broker;
  /** S3's health: the gate a job waits behind during an outage. */
  dependencies: DependencyWatch;
  store: ObjectStore;
  models: ModelCache;
  /** Runs images on the ONNX Runtime threads, batched across jobs. */
  engine: Pick<InferenceEngine, 'infer'>;
  /** Bounds the images being decoded at once (PREPROCESS_CONCURRENCY). */
  preprocessLimit: ConcurrencyLimit;
  logger: Logger;
  tracer: Tracer;
  workerId: string;
  maxImageBytes: number;
  maxImagePixels: number;
}

/** Handles one job: report started, classify, publish the result, and only then ack. */
export function createJobHandler(deps: WorkerDeps, metrics: InferenceMetrics) {
  const { broker, logger } = deps;
  const jobs = metrics.jobs;

  async function publishResult(
    job: JobMessage,
    span: Span,
    fields: Pick<ResultMessage, 'outcome' | 'errors' | 'timings'> & { classification?: Classification },
  ) {
    const message: ResultMessage = {
      v: 1,
      type: 'cxr.result',
      requestId: job.requestId,
      correlationId: job.correlationId,
      dispatchToken: job.dispatchToken,
      worker: deps.workerId,
      modelId: job.model.id,
      at: new Date().toISOString(),
      ...fields,
    };
    await broker.publish(Topology.resultsExchange, RESULT_ROUTING_KEY, encodeMessage(message), {
      messageId: randomUUID(),
      correlationId: job.correlationId,
      headers: { [TRACEPARENT]: span.traceparent() },
    });
  }

  function fetchImage(job: JobMessage): Promise<Buffer> {
    return fetchVerified(deps.store, job.image, deps.maxImageBytes, {
      code: 'IMAGE',
      missing: `image ${job.image.key} is not in storage`,
      tooLarge: "the image is larger than this worker's MAX_IMAGE_BYTES",
      corrupt: 'the stored image does not match its recorded sha256',
    });
  }

  /** Fetches, preprocesses and runs the job once; throws UnrecoverableJobError for a job that can never succeed. */
  async function classifyJob(job: JobMessage, timings: Timings): Promise<Classification> {
    let t = performance.now();
    const image = await fetchImage(job);
    timings.fetchImageMs = round(performance.now() - t);
    metrics.fetchImage.observe(timings.fetchImageMs / 1000);
    let data: Float32Array;
    try {
      data = await deps.preprocessLimit.run(async () => {
        t = performance.now(); // the decode itself, not the wait for a slot
        const tensor = await preprocess(image, job.model.inputSpec, job.keepAspectRatio, deps.maxImagePixels);
        timings.preprocessMs = round(performance.now() - t);
        metrics.preprocess.observe(timings.preprocessMs / 1000);
        return tensor;
      });
    } catch (error) {
      throw new UnrecoverableJobError(
        'IMAGE_CORRUPT',
        `the image data is damaged or truncated: ${(error as Error).message.split('\n')[0]}`,
      );
    }
    t = performance.now();
    const { scores, batchSize } = await deps.models.with(job.model, async (model) => {
      timings.fetchModelMs = round(performance.now() - t);
      metrics.fetchModel.observe(timings.fetchModelMs / 1000);
      t = performance.now();
      try {
        // Batched with other jobs' images of this model; the tensor is handed over to a thread.
        return await deps.engine.infer(model, data, inputShape(job.model.inputSpec, 1).slice(1));
      } catch (error) {
        if (error instanceof InferenceRunError) {
          throw new UnrecoverableJobError('INFERENCE_FAILED', `ONNX Runtime failed: ${error.message.split('\n')[0]}`);
        }
        // The thread running the batch died: nothing says this job caused it, so it is tried again.
        throw error;
      }
    });
    // From handing the image over to its scores: the wait for a batch and a thread, and the batch's run.
    timings.inferenceMs = round(performance.now() - t);
    metrics.inference.observe({ model: job.model.id }, timings.inferenceMs / 1000);
    timings.batchSize = batchSize;
    try {
      return classify(job.model.labels, scores, job.model.inputSpec.output);
    } catch (error) {
      throw new UnrecoverableJobError('OUTPUT_INVALID', (error as Error).message);
    }
  }

  async function handleJob(message: ConsumeMessage): Promise<Disposition> {
    const decoded = decodeMessage(JobMessage, message.content);
    if (!decoded.ok) {
      jobs.inc({ outcome: 'invalid' });
      logger.warn({ reason: decoded.reason }, 'invalid job sent to the invalid queue');
      await broker.publishInvalid(message, Topology.jobsQueue, decoded.reason);
      return 'ack';
    }
    const job = decoded.value;
    // The job's span continues the trace of the submission that made it.
    const span = deps.tracer.start('classify job', parseTraceparent(message.properties.headers?.[TRACEPARENT]), {
      'cxr.request_id': job.requestId,
      'cxr.model_id': job.model.id,
    });
    const log = logger.child({
      requestId: job.requestId,
      correlationId: job.correlationId,
      trace_id: span.context.traceId,
    });
    return inSpan(
      span,
      () => runJob(job, span, log),
      (disposition) => ({ 'cxr.disposition': disposition }),
    );
  }

  async function runJob(job: JobMessage, span: Span, log: Logger): Promise<Disposition> {
    const started = performance.now();
    const queueMs = Math.max(0, Date.now() - Date.parse(job.dispatchedAt));
    metrics.queueWait.observe(queueMs / 1000);
    const timings: Timings = { queueMs };
    await publishResult(job, span, { outcome: 'started', errors: [], timings: {} });

    let classification: Classification;
    for (;;) {
      try {
        classification = await classifyJob(job, timings);
        break;
      } catch (error) {
        if (error instanceof UnrecoverableJobError) {
          timings.totalMs = round(performance.now() - started);
          const errors: ProcessingError[] = [{ code: error.code, message: error.message.slice(0, 2000) }];
          await publishResult(job, span, { outcome: 'failed', errors, timings });
          jobs.inc({ outcome: 'failed' });
          metrics.job.observe(timings.totalMs / 1000);
          log.info({ code: error.code }, 'job failed');
          return 'ack';
        }
        if (await deps.dependencies.checkNow()) {
          // Not an outage: something about this job; its delivery is spent and it goes back to the queue.
          jobs.inc({ outcome: 'retried' });
          log.warn({ err: error }, 'transient failure; the job goes back to the queue');
          return 'requeue';
        }
        // A dependency is down: hold the job (its delivery is not spent) and try again once it is back.
        jobs.inc({ outcome: 'held' });
        log.warn({ err: error }, 'a dependency is down; holding the job until it is back');
        await deps.dependencies.waitUntilReady();
      }
    }
    timings.totalMs = round(performance.now() - started);
    await publishResult(job, span, { outcome: 'classified', errors: [], timings, classification });
    jobs.inc({ outcome: 'classified' });
    metrics.job.observe(timings.totalMs / 1000);
    log.info({ label: classification.label, score: classification.score, totalMs: timings.totalMs }, 'job classified');
    return 'ack';
  }

  return handleJob;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
