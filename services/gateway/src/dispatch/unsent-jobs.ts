import type { Logger } from '@cxr/logging';
import type { RequestRecord } from '@cxr/db';
import type { DispatchToken, JobTarget } from './dispatcher';

interface Unsent {
  doc: RequestRecord;
  token: DispatchToken;
  target: JobTarget;
}

/**
 * Jobs this gateway could not publish (the broker was away), kept in memory to be published as
 * soon as its connection is back instead of when their publish timers fall due. A hint only:
 * the timers still cover a gateway that dies or a list that overflowed, so it is bounded.
 */
export class UnsentJobs {
  private readonly jobs = new Map<string, Unsent>();
  private flushing: Promise<void> | null = null;

  constructor(private readonly maxJobs = 10_000) {}

  add(doc: RequestRecord, token: DispatchToken, target: JobTarget): void {
    if (this.jobs.size >= this.maxJobs) return;
    this.jobs.set(String(doc._id), { doc, token, target });
  }

  get size(): number {
    return this.jobs.size;
  }

  /** Publishes every kept job once (one pass at a time); a job that fails again stays for the next pass. */
  flush(publish: (job: Unsent) => Promise<void>, logger: Logger): Promise<void> {
    this.flushing ??= (async () => {
      let sent = 0;
      for (const [id, job] of [...this.jobs]) {
        try {
          await publish(job);
          this.jobs.delete(id);
          sent += 1;
        } catch (error) {
          logger.warn({ err: error, requestId: id }, 'could not publish a kept job; its publish timer will');
          break;
        }
      }
      if (sent > 0) logger.info({ sent, left: this.jobs.size }, 'published the jobs kept while the broker was away');
    })().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }
}
