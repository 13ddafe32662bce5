export { Broker, requeueDelay } from './broker';
export type { BrokerOptions, Disposition, MessageHandler, PublishOptions } from './broker';
export { Topology, declareTopology, JOB_ROUTING_KEY, RESULT_ROUTING_KEY } from './topology';
export type { TopologyOptions } from './topology';
export { BrokerUnavailableError, PublishNotConfirmedError, TopologyMissingError } from './errors';
