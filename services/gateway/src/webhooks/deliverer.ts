import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { Types, type ClassificationRequests, type RequestRecord } from '@cxr/db';
import type { Logger } from '@cxr/logging';
import { SLOT_MS } from '@cxr/request-lifecycle';
import { classificationView } from '../lib/views';
import type { WebhookMetrics } from '../metrics';
import { CallbackRefusedError, type AddressGuard } from './address-guard';
import { signatureHeader, webhookSecret } from './signing';

export interface WebhookDelivererOptions {
  /** WEBHOOK_SIGNING_KEY: each user's secret is derived from it. */
  signingKey: string;
  /** One attempt's bound: connecting, sending and the answer's status line. */
  timeoutMs: number;
  /** Attempts in flight at once; beyond, a due webhook waits for a later sweep. */
  concurrency: number;
}

const USER_AGENT = 'CXR-Classify-Webhooks/1';

/**
 * POSTs the outcome of ended requests to their callback_url, signed with the submitter's secret.
 * A webhook is owed by the request's lifecycle timer (armed in the write that ended it), so no
 * crash loses it; this class only fires that timer early. Each attempt is claimed first (the
 * timer moved past the attempt, by a write conditional on the timer as it was read), so of the
 * replicas that hear of the same request normally one sends; a sender that dies leaves a claim
 * that lapses and the attempt is made again: delivery is at least once.
 */
export class WebhookDeliverer {
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly deps: {
      requests: ClassificationRequests;
      guard: AddressGuard;
      logger: Logger;
      metrics: WebhookMetrics;
    },
    private readonly options: WebhookDelivererOptions,
  ) {}

  /** A request with a webhook ended (the cxr.events hint): send its first attempt now rather than at the next sweep. */
  hint(requestId: string): void {
    if (this.closed || this.inFlight.size >= this.options.concurrency || !Types.ObjectId.isValid(requestId)) return;
    this.track(
      (async () => {
        const doc = await this.deps.requests.get(new Types.ObjectId(requestId));
        if (doc) await this.fire(doc);
      })(),
      requestId,
    );
  }

  /**
   * Fires the request's webhook timer if it is due: claims the attempt and sends it in the
   * background. The sweeper calls this for the webhook timers it finds due.
   */
  async fire(doc: RequestRecord): Promise<void> {
    const { requests } = this.deps;
    if (this.closed || doc.timer?.kind !== 'webhook') return;
    if (this.inFlight.size >= this.options.concurrency) {
      // Busy: due again in the next slot, which the sweeper has not passed yet.
      await requests.rearm(doc, { kind: 'webhook', dueAt: new Date(requests.now().getTime() + SLOT_MS) });
      return;
    }
    const claimed = await requests.apply(doc, { type: 'timer-fired' });
    const effect = claimed.transition.effect;
    // Not due yet, claimed by another replica, or given up (the lifecycle moved it to retention).
    if (!claimed.transition.changed || effect?.kind !== 'deliver-webhook') return;
    this.track(this.send(claimed.doc, effect.attempt), String(doc._id));
  }

  /** Stops taking webhooks and waits for the attempts in flight (each bounded by its timeout). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.inFlight]);
  }

  private track(task: Promise<void>, requestId: string): void {
    const tracked = task.catch((error: unknown) => {
      // The claim lapses and the timer brings the attempt back.
      this.deps.logger.warn({ err: error, requestId }, 'webhook attempt not recorded; it will be made again');
    });
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
  }

  private async send(doc: RequestRecord, attempt: number): Promise<void> {
    const { requests, guard, logger, metrics } = this.deps;
    const webhook = doc.webhook;
    if (!webhook) return;
    const result = await requests.result(doc._id);
    // The body is the request as the API shows it, less its delivery (which this attempt changes).
    const request: Partial<ReturnType<typeof classificationView>> = classificationView(doc, result);
    delete request.webhook;
    const body = JSON.stringify({ type: `classification.${request.state}`, request });
    const timestamp = Math.floor(requests.now().getTime() / 1000);
    const headers = {
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      'cxr-signature': signatureHeader(webhookSecret(this.options.signingKey, String(doc.submitter)), timestamp, body),
      'cxr-request-id': String(doc._id),
      'cxr-delivery-attempt': String(attempt),
    };
    const at = requests.now();
    const started = performance.now();
    let statusCode: number | null = null;
    let error: string | null = null;
    let outcome: 'delivered' | 'failed' | 'refused';
    try {
      statusCode = await post(new URL(webhook.url), body, headers, guard, this.options.timeoutMs);
      outcome = statusCode >= 200 && statusCode < 300 ? 'delivered' : 'failed';
    } catch (failure) {
      outcome = failure instanceof CallbackRefusedError ? 'refused' : 'failed';
      error = describe(failure, this.options.timeoutMs);
    }
    const durationMs = Math.round(performance.now() - started);
    const recorded = await requests.recordWebhookAttempt(
      doc,
      { at, status_code: statusCode, error, duration_ms: durationMs },
      outcome,
      Math.random(),
    );
    const status = recorded.doc.webhook?.status;
    metrics.deliveries.inc({
      outcome:
        outcome === 'delivered'
          ? 'delivered'
          : outcome === 'refused'
            ? 'refused_ssrf'
            : status === 'failed'
              ? 'gave_up'
              : 'retry',
    });
    const context = { requestId: String(doc._id), attempt, statusCode, error, durationMs, status };
    if (outcome === 'delivered') logger.info(context, 'webhook delivered');
    else logger.warn(context, status === 'pending' ? 'webhook attempt failed; will retry' : 'webhook given up');
  }
}

/**
 * One POST to a checked address: IP literals are checked here, host names by the guard's
 * lookup, which is the only resolution the connection uses. No redirect is followed; the
 * answer's body is not read.
 */
async function post(
  url: URL,
  body: string,
  headers: Record<string, string>,
  guard: AddressGuard,
  timeoutMs: number,
): Promise<number> {
  await guard.refuseLiteral(url.hostname);
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const request = transport.request(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        agent: false,
        lookup: guard.lookup,
        signal: AbortSignal.timeout(timeoutMs),
      },
      (response) => {
        resolve(response.statusCode ?? 0);
        response.destroy();
      },
    );
    request.once('error', reject);
    request.end(body);
  });
}

/** What an attempt that got no HTTP status shows on the request: short, with no stack. */
function describe(error: unknown, timeoutMs: number): string {
  if (!(error instanceof Error)) return 'failed';
  if (error.name === 'AbortError' || error.name === 'TimeoutError') {
    return `no answer within ${timeoutMs / 1000} s`;
  }
  const code = (error as { code?: unknown }).code;
  const text =
    typeof code === 'string' && !(error instanceof CallbackRefusedError) ? `${code}: ${error.message}` : error.message;
  return text.slice(0, 300);
}
