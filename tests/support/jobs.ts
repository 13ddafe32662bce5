import type amqp from 'amqplib';
import { Topology } from '@cxr/broker';
import { decodeMessage, JobMessage, type ResultMessage } from '@cxr/contracts';
import { waitFor } from './wait';

/** Takes the next job from the jobs queue, as a worker would, token and all. */
export async function takeJob(channel: amqp.Channel): Promise<JobMessage> {
  const message = await waitFor(
    'a job in the jobs queue',
    () => channel.get(Topology.jobsQueue, { noAck: true }),
    (m): m is amqp.GetMessage => m !== false,
  );
  const decoded = decodeMessage(JobMessage, message.content);
  if (!decoded.ok) throw new Error(decoded.reason);
  return decoded.value;
}

/**
 * A result for `job` as a worker holding `token` would send it: `label` scored 1 and the model's
 * other labels 0 (a label the model does not have scores 0.5, alone).
 */
export function classifiedResult(job: JobMessage, token: string, label: string, worker = 'test-worker'): ResultMessage {
  const labels = job.model.labels;
  return {
    v: 1,
    type: 'cxr.result',
    requestId: job.requestId,
    correlationId: job.correlationId,
    dispatchToken: token,
    outcome: 'classified',
    worker,
    modelId: job.model.id,
    at: new Date().toISOString(),
    classification: {
      label,
      score: labels.includes(label) ? 1 : 0.5,
      scores: labels.map((l) => ({ label: l, score: l === label ? 1 : 0 })),
    },
    errors: [],
    timings: {},
  };
}
