import type { Logger } from '@cxr/logging';

/** Registers how to close a resource; resources close in reverse order of registration. */
export type Defer = (close: () => Promise<void> | void) => void;

/**
 * Runs a service until SIGTERM or SIGINT. `start` opens its resources, registering each one's
 * close with `defer` as soon as it exists; stopping closes them in reverse order, each step on
 * its own so one failure does not skip the rest, within `graceMs` (a second signal or the
 * timeout forces the exit). A start that fails closes what it had opened and exits 1.
 *
 * A dependency that goes away for a while is not a reason to exit: the broker reconnects by
 * itself, and a `DependencyGate` pauses the consumers while the store or database is down.
 * `fail` is for what the service cannot recover from (e.g. the broker gave up reconnecting:
 * `broker.on('lost', fail)`): it stops the service like a signal does and exits 1, so a
 * supervisor restarts it. Nothing is lost meanwhile: unacknowledged messages return to their
 * queue.
 */
export async function runService(
  name: string,
  logger: Logger,
  start: (fail: (error: Error) => void, defer: Defer) => Promise<void>,
  graceMs = 15_000,
): Promise<void> {
  const closers: (() => Promise<void> | void)[] = [];
  let stopping = false;

  const closeAll = async (): Promise<boolean> => {
    let clean = true;
    for (const close of closers.splice(0).reverse()) {
      try {
        await close();
      } catch (error) {
        clean = false;
        logger.error({ err: error }, 'close failed');
      }
    }
    return clean;
  };

  const shutdown = async (code: number, reason: string) => {
    if (stopping) {
      logger.warn({ reason }, 'forced exit');
      process.exit(code || 1);
    }
    stopping = true;
    logger.info({ reason }, `${name} stopping`);
    const timer = setTimeout(() => {
      logger.error({ graceMs }, 'shutdown took too long; exiting');
      process.exit(code || 1);
    }, graceMs);
    timer.unref();
    const clean = await closeAll();
    logger.info(`${name} stopped`);
    process.exit(clean ? code : code || 1);
  };

  process.on('SIGTERM', () => void shutdown(0, 'SIGTERM'));
  process.on('SIGINT', () => void shutdown(0, 'SIGINT'));
  process.on('unhandledRejection', (error) => {
    logger.fatal({ err: error }, 'unhandled rejection');
    void shutdown(1, 'unhandled rejection');
  });

  try {
    await start(
      (error) => {
        logger.fatal({ err: error }, 'fatal error; stopping');
        void shutdown(1, error.message);
      },
      (close) => closers.push(close),
    );
    logger.info(`${name} started`);
  } catch (error) {
    logger.fatal({ err: error }, `${name} failed to start`);
    await closeAll();
    process.exit(1);
  }
}

/** Loads a service's configuration, or prints why it cannot and exits 1. */
export function configOrExit<T>(service: string, load: () => T): T {
  try {
    return load();
  } catch (error) {
    console.error(`${service}: ${(error as Error).message}`);
    process.exit(1);
  }
}
