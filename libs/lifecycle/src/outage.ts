import type { Logger } from '@cxr/logging';

/** What a consumer knows of its dependencies' health (a DependencyGate): it waits behind it during an outage. */
export interface DependencyWatch {
  /** Checks the dependencies now; false when one is down. */
  checkNow(): Promise<boolean>;
  /** Resolves when every dependency answers again. */
  waitUntilReady(): Promise<void>;
}

/**
 * Wraps a message handler so that an outage of a dependency holds the message instead of
 * spending one of its deliveries: when the handler throws and a dependency is down, it waits
 * for the dependency and runs the handler again. An error while every dependency answers is
 * the message's own, and is thrown (the broker requeues it and counts the delivery).
 */
export function holdThroughOutages<M, R>(
  handler: (message: M) => Promise<R>,
  dependencies: DependencyWatch,
  logger: Logger,
  onHold: () => void = () => undefined,
): (message: M) => Promise<R> {
  return async (message) => {
    for (;;) {
      try {
        return await handler(message);
      } catch (error) {
        if (await dependencies.checkNow()) throw error;
        onHold();
        logger.warn({ err: error }, 'a dependency is down; holding the message until it is back');
        await dependencies.waitUntilReady();
      }
    }
  };
}
