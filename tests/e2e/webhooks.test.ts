// Issue 9, item 5: a request may carry callback_url; when it ends, the gateway POSTs its outcome,
// signed with the submitter's secret, at least once, with retries, the attempts shown on the
// request, and an SSRF guard. A receiver started here gets exactly the outcomes of its requests.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { resolve } from 'node:path';
import { buildDemoModel, renderSample } from '@cxr/demo-model';
import {
  CxrApiError,
  CxrClient,
  succeed,
  verifyWebhookSignature,
  WebhookSignatureError,
  type WebhookEvent,
} from '@cxr/client';
import { openapiValidator } from '../support/openapi';
import { startSystem, type System } from '../support/system';
import { waitFor } from '../support/wait';

jest.setTimeout(180_000);

/** The committed OpenAPI document (the contract test keeps it the one the gateway serves). */
const openapi = JSON.parse(
  readFileSync(resolve(__dirname, '..', '..', 'services', 'gateway', 'openapi.json'), 'utf8'),
) as { webhooks: Record<string, { post: { requestBody: { content: Record<string, unknown> } } }> };
/** The webhook body as that document describes it. */
const validateEvent = openapiValidator(openapi).compile<WebhookEvent>({
  $ref: 'openapi.json#/components/schemas/WebhookEvent',
});

interface Delivery {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver on 127.0.0.1: /ok answers 200; /flaky answers 500 to a request's first attempt, then 200. */
class Receiver {
  readonly deliveries: Delivery[] = [];
  private readonly server: Server;
  private readonly refusedOnce = new Set<string>();
  port = 0;

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const path = req.url ?? '/';
        this.deliveries.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        const id = String(req.headers['cxr-request-id']);
        if (path === '/flaky' && !this.refusedOnce.has(id)) {
          this.refusedOnce.add(id);
          res.writeHead(500).end('not yet');
          return;
        }
        res.writeHead(200).end('ok');
      });
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((done) => this.server.listen(0, '127.0.0.1', done));
    const address = this.server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** The deliveries to `path`, one per request id (a duplicate, allowed by at-least-once, is dropped here). */
  byRequest(path: string): Map<string, Delivery> {
    const unique = new Map<string, Delivery>();
    for (const d of this.deliveries.filter((x) => x.path === path)) {
      const id = String(d.headers['cxr-request-id']);
      if (!unique.has(id)) unique.set(id, d);
    }
    return unique;
  }

  close(): Promise<void> {
    return new Promise((done) => this.server.close(() => done()));
  }
}

/** A PNG whose IDAT chunk has a wrong CRC: accepted from its header, failed IMAGE_CORRUPT by inference. */
async function corruptPng(): Promise<Buffer> {
  const png = Buffer.from(await renderSample('striped', { width: 64, height: 64, seed: 3 }));
  const idat = png.indexOf('IDAT');
  png[idat + 4 + png.readUInt32BE(idat - 4)]! ^= 0xff;
  return png;
}

describe('webhooks', () => {
  let system: System;
  let receiver: Receiver;
  let cxr: CxrClient;
  let other: CxrClient;
  let datasetId: string;
  let secret: string;

  beforeAll(async () => {
    receiver = new Receiver();
    await receiver.start();
    system = await startSystem();
    const admin = new CxrClient({ baseUrl: system.gatewayUrl, apiKey: system.adminKey });
    const user = await succeed(admin.api.POST('/v1/users', { body: { username: 'hook-user' } }));
    const second = await succeed(admin.api.POST('/v1/users', { body: { username: 'hook-other' } }));
    cxr = new CxrClient({ baseUrl: system.gatewayUrl, apiKey: user.api_key.key });
    other = new CxrClient({ baseUrl: system.gatewayUrl, apiKey: second.api_key.key });
    const dataset = await succeed(
      cxr.api.POST('/v1/datasets', { body: { name: 'hooks', display_name: 'Hooks', img_width: 64, img_height: 64 } }),
    );
    datasetId = dataset.id;
    const demo = buildDemoModel();
    await cxr.uploadModel(datasetId, {
      file: demo.onnx,
      labels: [...demo.labels],
      inputSpec: { ...demo.inputSpec, output: 'auto' },
    });
    ({ secret } = await succeed(cxr.api.GET('/v1/users/me/webhook-secret')));
  });
  afterAll(async () => {
    await system?.stop();
    await receiver?.close();
  });

  it('gives each user its own stable secret, to its owner only', async () => {
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect((await succeed(cxr.api.GET('/v1/users/me/webhook-secret'))).secret).toBe(secret);
    const theirs = (await succeed(other.api.GET('/v1/users/me/webhook-secret'))).secret;
    expect(theirs).not.toBe(secret);
    const anonymous = await fetch(`${system.gatewayUrl}/v1/users/me/webhook-secret`);
    expect(anonymous.status).toBe(401);
  });

  it('delivers exactly the outcomes of its requests, classified and failed, each signed with the submitter’s secret', async () => {
    const images = await Promise.all(
      (['bright', 'dark', 'striped'] as const).map((kind, i) =>
        renderSample(kind, { width: 64, height: 64, seed: 40 + i }),
      ),
    );
    const callbackUrl = receiver.url('/ok');
    const submitted = await Promise.all([
      ...images.map((image) => cxr.classify(image, { dataset: datasetId }, { callbackUrl })),
      cxr.classify(await corruptPng(), { dataset: datasetId }, { callbackUrl }),
    ]);
    // One without a callback: its outcome must not arrive.
    const silent = await cxr.classify(await renderSample('bright', { width: 64, height: 64, seed: 49 }), {
      dataset: datasetId,
    });
    const ids = new Set(submitted.map((s) => s.id));
    expect(ids.size).toBe(4);

    const got = await waitFor(
      'a webhook for each of the 4 requests',
      () => receiver.byRequest('/ok'),
      (m) => m.size >= 4,
      60_000,
    );
    expect(new Set(got.keys())).toEqual(ids);
    expect(got.has(silent.id)).toBe(false);

    // The document's webhook body is the schema every delivery is checked against below.
    expect(openapi.webhooks.classificationEnded?.post.requestBody.content['application/json']).toEqual({
      schema: { $ref: '#/components/schemas/WebhookEvent' },
    });
    const states: string[] = [];
    for (const [id, delivery] of got) {
      expect(delivery.headers['content-type']).toBe('application/json');
      expect(delivery.headers['user-agent']).toMatch(/^CXR-Classify-Webhooks\//);
      expect(delivery.headers['cxr-delivery-attempt']).toBe('1');
      const header = String(delivery.headers['cxr-signature']);
      await expect(
        verifyWebhookSignature({ secret, header, body: delivery.body, toleranceSeconds: 300 }),
      ).resolves.toEqual(expect.any(Number));
      const payload = JSON.parse(delivery.body) as WebhookEvent;
      // What the OpenAPI document's webhooks section says is sent.
      expect(validateEvent(payload) ? [] : validateEvent.errors).toEqual([]);
      expect(payload.request.id).toBe(id);
      expect(payload.type).toBe(`classification.${payload.request.state}`);
      expect(payload.request).not.toHaveProperty('webhook');
      // The outcome sent is the outcome recorded.
      const view = await succeed(cxr.api.GET('/v1/classifications/{id}', { params: { path: { id } } }));
      expect(payload.request.state).toBe(view.state);
      expect(payload.request.result).toEqual(view.result);
      states.push(view.state);
    }
    expect(states.sort()).toEqual(['classified', 'classified', 'classified', 'failed']);

    // Each request shows its delivery, once the attempt is recorded.
    const delays: number[] = [];
    for (const id of ids) {
      const view = await waitFor(
        `request ${id} showing its webhook delivered`,
        () => succeed(cxr.api.GET('/v1/classifications/{id}', { params: { path: { id } } })),
        (v) => v.webhook?.status === 'delivered',
      );
      expect(view.webhook).toMatchObject({ url: callbackUrl, attempt_count: 1 });
      const attempts = view.webhook?.attempts.map((a) => [a.status_code, a.error, typeof a.at, typeof a.duration_ms]);
      expect(attempts).toEqual([[200, null, 'string', 'number']]);
      delays.push(Date.parse(view.webhook!.attempts[0]!.at) - Date.parse(view.completed_at!));
    }
    // A figure, not an assertion: how soon after the outcome the first attempt went (the events hint).
    process.stdout.write(
      `webhooks: first attempt ${Math.max(...delays)} ms at most after the outcome (${delays.join(', ')} ms)\n`,
    );
    const plain = await succeed(cxr.api.GET('/v1/classifications/{id}', { params: { path: { id: silent.id } } }));
    expect(plain.webhook).toBeNull();
  });

  it('refuses a forged or tampered signature, another user’s secret and a stale timestamp', async () => {
    const image = await renderSample('dark', { width: 64, height: 64, seed: 60 });
    const { id } = await cxr.classify(image, { dataset: datasetId }, { callbackUrl: receiver.url('/ok') });
    const delivery = (await waitFor('its webhook', () => receiver.byRequest('/ok').get(id), Boolean))!;
    const header = String(delivery.headers['cxr-signature']);
    const t = Number(/t=(\d+)/.exec(header)?.[1]);
    const theirs = (await succeed(other.api.GET('/v1/users/me/webhook-secret'))).secret;
    const problem = async (options: Parameters<typeof verifyWebhookSignature>[0]) =>
      verifyWebhookSignature(options).then(
        () => 'accepted',
        (error: unknown) => (error instanceof WebhookSignatureError ? error.code : String(error)),
      );
    expect(await problem({ secret, header, body: delivery.body, now: t })).toBe('accepted');
    const forged = header.replace(/v1=[0-9a-f]+/, `v1=${'0'.repeat(64)}`);
    expect(await problem({ secret, header: forged, body: delivery.body, now: t })).toBe('MISMATCH');
    const tampered = delivery.body.replace(/"state":"\w+"/, '"state":"failed"').replace('classified', 'failed');
    expect(tampered).not.toBe(delivery.body);
    expect(await problem({ secret, header, body: tampered, now: t })).toBe('MISMATCH');
    expect(await problem({ secret: theirs, header, body: delivery.body, now: t })).toBe('MISMATCH');
    expect(await problem({ secret, header, body: delivery.body, now: t + 3600 })).toBe('STALE_TIMESTAMP');
  });

  it('retries a receiver that failed, and the request shows both attempts', async () => {
    const image = await renderSample('striped', { width: 64, height: 64, seed: 70 });
    const { id } = await cxr.classify(image, { dataset: datasetId }, { callbackUrl: receiver.url('/flaky') });
    const view = await waitFor(
      'the webhook delivered on its second attempt',
      () => succeed(cxr.api.GET('/v1/classifications/{id}', { params: { path: { id } } })),
      (v) => v.webhook?.status === 'delivered',
      60_000,
    );
    expect(view.webhook?.attempt_count).toBe(2);
    expect(view.webhook?.attempts.map((a) => a.status_code)).toEqual([500, 200]);
    const attempts = receiver.deliveries.filter((d) => d.headers['cxr-request-id'] === id);
    expect(attempts.map((d) => d.headers['cxr-delivery-attempt'])).toEqual(['1', '2']);
    // Both attempts carry the same body, each validly signed.
    expect(attempts[1]!.body).toBe(attempts[0]!.body);
    for (const d of attempts) {
      await expect(
        verifyWebhookSignature({ secret, header: String(d.headers['cxr-signature']), body: d.body }),
      ).resolves.toEqual(expect.any(Number));
    }
    const metrics = await (await fetch(`${system.gatewayUrl}/metrics`)).text();
    expect(metrics).toMatch(/cxr_gateway_webhook_deliveries_total\{outcome="retry"\} [1-9]/);
    expect(metrics).toMatch(/cxr_gateway_webhook_deliveries_total\{outcome="delivered"\} [1-9]/);
  });

  it('refuses at submission a callback_url to a non-public address the operator did not allow, storing nothing', async () => {
    const image = await renderSample('bright', { width: 64, height: 64, seed: 80 });
    const before = await system.db.models.ClassificationRequest.countDocuments({});
    for (const [callbackUrl, message] of [
      ['http://10.0.0.7/hook', /non-public address/],
      ['http://169.254.169.254/latest/meta-data/', /non-public address/],
      ['http://[::1]:8080/hook', /non-public address/],
      ['ftp://example.org/hook', /http:\/\/ or https:\/\//],
      ['https://user:secret@example.org/hook', /user name or password/],
      ['not a url', /not an absolute URL/],
    ] as const) {
      const refused = await cxr.classify(image, { dataset: datasetId }, { callbackUrl, idempotencyKey: false }).then(
        () => null,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(CxrApiError);
      const { status, code, message: text } = refused as CxrApiError;
      expect({ callbackUrl, status, code }).toEqual({ callbackUrl, status: 400, code: 'CALLBACK_URL' });
      expect(text).toMatch(message);
    }
    expect(await system.db.models.ClassificationRequest.countDocuments({})).toBe(before);
  });
});
