import type { Logger } from '@cxr/logging';

export interface RunningService {
  /** Stops taking work, lets in-flight work finish, closes every resource. */
  stop(): Promise<void>;
}

/**
 * Runs a service until SIGTERM or SIGINT, then stops it within `graceMs` (a second signal or
 * the timeout forces the exit). An unexpected loss of a dependency calls `fail`, which stops
 * the service and exits non-zero, so a supervisor restarts it; nothing is lost meanwhile,
 * because unacknowledged messages return to their queue.
 */
export async function runService(
  name: string,
  logger: Logger,
  start: (fail: (error: Error) => void) => Promise<RunningService>,
  graceMs = 15_000,
): Promise<void> {
  let service: RunningService | null = null;
  let stopping = false;

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
    try {
      await service?.stop();
    } catch (error) {
      logger.error({ err: error }, 'error while stopping');
      code = code || 1;
    }
    logger.info(`${name} stopped`);
    logger.flush?.();
    process.exit(code);
  };

  process.on('SIGTERM', () => void shutdown(0, 'SIGTERM'));
  process.on('SIGINT', () => void shutdown(0, 'SIGINT'));
  process.on('unhandledRejection', (error) => {
    logger.fatal({ err: error }, 'unhandled rejection');
    void shutdown(1, 'unhandled rejection');
  });

  try {
    service = await start((error) => {
      logger.fatal({ err: error }, 'dependency lost');
      void shutdown(1, error.message);
    });
    logger.info(`${name} started`);
  } catch (error) {
    logger.fatal({ err: error }, `${name} failed to start`);
    logger.flush?.();
    // Give pino a moment to write the line before the process ends.
    setTimeout(() => process.exit(1), 100);
  }
}
