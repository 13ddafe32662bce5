export { Broker, requeueDelay, withHeartbeat } from './broker';
export type {
  BrokerEvents,
  BrokerOptions,
  Disposition,
  MessageHandler,
  PublishOptions,
  ReconnectOptions,
} from './broker';
export { Topology, declareTopology, JOB_ROUTING_KEY, RESULT_ROUTING_KEY } from './topology';
export type { TopologyChannel, TopologyOptions } from './topology';
/** The message type handlers receive, so services need no amqplib dependency of their own. */
export type { ConsumeMessage } from 'amqplib';
export { BrokerUnavailableError, PublishNotConfirmedError, TopologyMissingError } from './errors';
