/** The broker connection or channel went away while the service was not closing. */
export class BrokerUnavailableError extends Error {
  override readonly name = 'BrokerUnavailableError';
  readonly code = 'BROKER_UNAVAILABLE';
}

/** A queue or exchange the service relies on has not been declared. */
export class TopologyMissingError extends Error {
  override readonly name = 'TopologyMissingError';
  readonly code = 'TOPOLOGY_MISSING';
}

/** The broker refused (nacked) or could not confirm a published message. */
export class PublishNotConfirmedError extends Error {
  override readonly name = 'PublishNotConfirmedError';
  readonly code = 'PUBLISH_NOT_CONFIRMED';
}
