import type amqp from 'amqplib';
import { Topology } from '@cxr/broker';
import { decodeMessage, JobMessage } from '@cxr/contracts';
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
