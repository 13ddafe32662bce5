import { performance } from 'node:perf_hooks';

/**
 * The stages of one request, each timed from the end of the one before, for a `Server-Timing`
 * header (https://www.w3.org/TR/server-timing/): clients, the bench and browsers' developer tools
 * see where a submission's time went in the gateway.
 */
export class StageTimer {
  private readonly stages: [name: string, ms: number][] = [];
  private last: number;

  /** `startedAt`: a `performance.now()` reading of when the request arrived. */
  constructor(startedAt: number = performance.now()) {
    this.last = startedAt;
  }

  /** Ends the stage under way, named `name` (a token: letters, digits, `-` and `_`). */
  mark(name: string): void {
    const now = performance.now();
    this.stages.push([name, now - this.last]);
    this.last = now;
  }

  /** `name;dur=ms` for each stage in order, durations in milliseconds with one decimal. */
  header(): string {
    return this.stages.map(([name, ms]) => `${name};dur=${Math.max(0, ms).toFixed(1)}`).join(', ');
  }
}
