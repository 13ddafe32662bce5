import type { Channel } from 'amqplib';

/**
 * Every exchange and queue of the system. Declared once by an operator (or a test) with
 * administrative credentials; services only check that they exist, so a service account
 * needs no `configure` permission at all.
 */
export const Topology = {
  jobsExchange: 'cxr.jobs',
  jobsQueue: 'cxr.jobs',
  jobsDeadExchange: 'cxr.jobs.dlx',
  jobsDeadQueue: 'cxr.jobs.dead',
  resultsExchange: 'cxr.results',
  resultsQueue: 'cxr.results',
  resultsDeadExchange: 'cxr.results.dlx',
  resultsDeadQueue: 'cxr.results.dead',
  invalidExchange: 'cxr.invalid',
  invalidQueue: 'cxr.invalid',
  /** Fanout of "request ended" hints, so a gateway holding a ?wait answers at once. */
  eventsExchange: 'cxr.events',
} as const;

export const JOB_ROUTING_KEY = 'job';
export const RESULT_ROUTING_KEY = 'result';

export interface TopologyOptions {
  /** Deliveries of one job before it is dead-lettered and its request failed. Default 5. */
  jobDeliveryLimit?: number;
  /** Deliveries of one result before it is dead-lettered for an operator. Default 10. */
  resultDeliveryLimit?: number;
}

/**
 * Quorum queues: replicated on a cluster, durable, and they count deliveries, so a message
 * that keeps crashing its consumer is dead-lettered after a bounded number of attempts
 * instead of looping forever. At-least-once dead-lettering needs `reject-publish` overflow.
 */
function quorum(deadLetterExchange: string, deliveryLimit: number) {
  return {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      'x-delivery-limit': deliveryLimit,
      'x-dead-letter-exchange': deadLetterExchange,
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
    },
  };
}

const plainQuorum = { durable: true, arguments: { 'x-queue-type': 'quorum' } };

/**
 * What declaring needs of a channel. Structural, so a channel from another amqplib copy (the
 * services and tools may resolve a different major version than this library) is accepted.
 */
export type TopologyChannel = Pick<Channel, 'assertExchange' | 'assertQueue' | 'bindQueue'>;

export async function declareTopology(channel: TopologyChannel, options: TopologyOptions = {}): Promise<void> {
  const t = Topology;
  for (const name of [t.jobsExchange, t.resultsExchange]) {
    await channel.assertExchange(name, 'direct', { durable: true });
  }
  for (const name of [t.jobsDeadExchange, t.resultsDeadExchange, t.invalidExchange, t.eventsExchange]) {
    await channel.assertExchange(name, 'fanout', { durable: true });
  }
  await channel.assertQueue(t.jobsQueue, quorum(t.jobsDeadExchange, options.jobDeliveryLimit ?? 5));
  await channel.assertQueue(t.resultsQueue, quorum(t.resultsDeadExchange, options.resultDeliveryLimit ?? 10));
  for (const name of [t.jobsDeadQueue, t.resultsDeadQueue, t.invalidQueue]) {
    await channel.assertQueue(name, plainQuorum);
  }
  await channel.bindQueue(t.jobsQueue, t.jobsExchange, JOB_ROUTING_KEY);
  await channel.bindQueue(t.resultsQueue, t.resultsExchange, RESULT_ROUTING_KEY);
  await channel.bindQueue(t.jobsDeadQueue, t.jobsDeadExchange, '');
  await channel.bindQueue(t.resultsDeadQueue, t.resultsDeadExchange, '');
  await channel.bindQueue(t.invalidQueue, t.invalidExchange, '');
}
