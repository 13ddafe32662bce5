/**
 * A job that can never succeed as sent (bad image, bad model): reported as a failed result
 * and acknowledged, never retried. Anything else thrown is taken as transient and retried
 * until the queue's delivery limit dead-letters the job.
 */
export class UnrecoverableJobError extends Error {
  override readonly name = 'UnrecoverableJobError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
