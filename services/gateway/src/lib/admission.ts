import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { BacklogMonitor } from './shedding';

/** Why a submission was not admitted (the outcome it is counted under). */
export type ShedReason = 'shed_in_flight' | 'shed_backlog';

/** A submission turned away: 503 OVERLOADED, with its Retry-After and a ready-made body. */
export interface Shed {
  reason: ShedReason;
  retryAfterSeconds: number;
  body: string;
}

/** One shed in front of the router: its route's pattern and the seconds it took to answer. */
export type ShedListener = (shed: Shed, route: string, seconds: number) => void;

/**
 * The two submission routes, matched on the raw request line. A submission this misses but the
 * router still matches (a percent-encoded path, `inject`) is admitted by the router's hook, with
 * the same count: nothing gets past the limit either way.
 */
const SUBMISSION_PATH = /^\/v1\/(datasets|models)\/[^/?#]+\/classifications(?:\?|$)/;

const overloaded = (message: string) => JSON.stringify({ error: 'OVERLOADED', message });

/**
 * Admission control of submissions: at most `maxInFlight` submissions read or stored at once by
 * this gateway (each holds at most UPLOAD_MEMORY_BYTES in memory; 0 means no limit), and none
 * while the jobs queue is deeper than the workers can drain soon.
 */
export class SubmissionGate {
  private inFlight = 0;
  private readonly admitted = new WeakSet<IncomingMessage>();
  private readonly busy: string;

  constructor(
    private readonly maxInFlight: number,
    private readonly backlog: BacklogMonitor | undefined,
  ) {
    this.busy = overloaded(`this gateway is taking ${maxInFlight} submissions already; retry in 1 s`);
  }

  /**
   * Admits a submission, counted until its exchange closes, or says how to shed it. A request
   * already admitted stays admitted (the listener decides first, the router's hook sees it again).
   */
  admit(request: IncomingMessage, response: ServerResponse): Shed | null {
    if (this.admitted.has(request)) return null;
    if (this.maxInFlight > 0 && this.inFlight >= this.maxInFlight) {
      return { reason: 'shed_in_flight', retryAfterSeconds: 1, body: this.busy };
    }
    if (this.backlog?.enabled) {
      // From the latest queue sample: no I/O per request.
      const verdict = this.backlog.admit();
      if (verdict.shed) {
        const seconds = verdict.retryAfterSeconds;
        return {
          reason: 'shed_backlog',
          retryAfterSeconds: seconds,
          body: overloaded(`the queue is longer than the workers can drain soon; retry in ${seconds} s`),
        };
      }
    }
    this.admitted.add(request);
    this.inFlight += 1;
    // 'close' comes once however the exchange ends: answered, failed or abandoned.
    response.once('close', () => (this.inFlight -= 1));
    return null;
  }

  /**
   * The server's request listener, in front of the router's (`next`). Under a flood, shedding is
   * most of what the gateway does, and the admitted submissions wait for the event loop behind
   * it: so a shed submission is answered here, from Node's own request and response, before
   * routing, the request's logger and span, rate limits, authentication or its upload. It is
   * counted through `onShed`, not logged. Everything else goes on to `next` untouched.
   */
  listener(
    next: RequestListener,
    requestId: (request: IncomingMessage) => string,
    onShed: ShedListener,
    closing: () => boolean,
  ): RequestListener {
    return (request, response) => {
      const route = request.method === 'POST' ? SUBMISSION_PATH.exec(request.url ?? '') : null;
      if (route) {
        const started = performance.now();
        const shed = this.admit(request, response);
        if (shed) {
          response.writeHead(503, {
            'content-type': 'application/json; charset=utf-8',
            'content-length': Buffer.byteLength(shed.body),
            'retry-after': String(shed.retryAfterSeconds),
            'x-request-id': requestId(request),
            // While shutting down, as every other answer: the server's close waits for its connections.
            ...(closing() ? { connection: 'close' } : {}),
          });
          response.end(shed.body);
          onShed(shed, `/v1/${route[1]}/:id/classifications`, (performance.now() - started) / 1000);
          return;
        }
      }
      next(request, response);
    };
  }
}
