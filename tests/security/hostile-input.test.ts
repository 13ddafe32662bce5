import { connect } from 'node:net';
import { buildDemoModel, renderSample } from '@cxr/demo-model';
import { Client, createUser } from '@cxr/client';
import { datasetWithDemoModel } from '../support/fixtures';
import { startSystem, type System } from '../support/system';

jest.setTimeout(120_000);

/** How long a client may go silent mid-body on this gateway; the server drops it after that. */
const BODY_IDLE_SECONDS = 3;
/** What the test gives the server to answer before it counts the request as hung. */
const CLIENT_PATIENCE_MS = 12_000;

interface RawAnswer {
  status: number | null;
  body: Record<string, unknown> | null;
  /** The server closed the connection (or the answer came with Connection: close). */
  closed: boolean;
  timedOut: boolean;
}

/**
 * One hand-made HTTP request on a raw socket, so a body can be malformed, cut short or never
 * finished. Resolves with what the server answered; a server that hangs makes `timedOut` true
 * after CLIENT_PATIENCE_MS instead of stalling the test.
 */
function rawRequest(
  url: string,
  request: {
    path: string;
    apiKey: string;
    contentType: string;
    body: Buffer;
    /** Declared length when it is not the body's: larger, to leave the body unfinished. */
    contentLength?: number;
    /** After the body: keep the socket open, or half-close it. */
    after?: 'wait' | 'end';
    /** Resolve only when the server closes the connection, not at the end of its answer. */
    untilClosed?: boolean;
    /** A request line and headers to send instead of the well-formed ones. */
    head?: string;
  },
): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    let received = Buffer.alloc(0);
    let settled = false;
    const finish = (timedOut: boolean, closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const text = received.toString('latin1');
      const headerEnd = text.indexOf('\r\n\r\n');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1];
      let body: Record<string, unknown> | null = null;
      if (headerEnd >= 0) {
        try {
          body = JSON.parse(text.slice(headerEnd + 4)) as Record<string, unknown>;
        } catch {
          body = null;
        }
      }
      socket.destroy();
      resolve({ status: status ? Number(status) : null, body, closed, timedOut });
    };
    const timer = setTimeout(() => finish(true, false), CLIENT_PATIENCE_MS);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const text = received.toString('latin1');
      const headerEnd = text.indexOf('\r\n\r\n');
      if (headerEnd < 0) return;
      const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, headerEnd))?.[1];
      const closing = /\r\nconnection: *close/i.test(text.slice(0, headerEnd));
      // A complete answer on a connection the server keeps: done. With Connection: close, wait for the close.
      if (!closing && !request.untilClosed && length !== undefined && received.length - headerEnd - 4 >= Number(length))
        finish(false, false);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => finish(false, true));
    socket.on('connect', () => {
      socket.write(
        request.head ??
          `POST ${request.path} HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${request.apiKey}\r\n` +
            `Content-Type: ${request.contentType}\r\nContent-Length: ${request.contentLength ?? request.body.length}\r\n\r\n`,
      );
      socket.write(request.body);
      if (request.after === 'end') socket.end();
    });
  });
}

const BOUNDARY = 'hostile-boundary-7f3a';
const FORM = `multipart/form-data; boundary=${BOUNDARY}`;

/** A part: its header lines as given (none at all is allowed), then its bytes. */
function part(headers: string[], content: Buffer | string): Buffer {
  return Buffer.concat([
    Buffer.from(`--${BOUNDARY}\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`),
    Buffer.isBuffer(content) ? content : Buffer.from(content),
    Buffer.from('\r\n'),
  ]);
}
const fileHeaders = (name: string, filename = 'x.bin', type = 'application/octet-stream') => [
  `Content-Disposition: form-data; name="${name}"; filename="${filename}"`,
  `Content-Type: ${type}`,
];
const fieldHeaders = (name: string) => [`Content-Disposition: form-data; name="${name}"`];
const closing = Buffer.from(`--${BOUNDARY}--\r\n`);
const form = (...parts: Buffer[]) => Buffer.concat([...parts, closing]);

describe('hostile clients get a 400 that says what is wrong, and no request hangs', () => {
  let system: System;
  let dave: Client;
  let datasetId: string;
  let image: Buffer;
  const demo = buildDemoModel();

  beforeAll(async () => {
    system = await startSystem([]);
    await system.start('gateway', { BODY_IDLE_SECONDS: String(BODY_IDLE_SECONDS) });
    dave = (await createUser(new Client(system.gatewayUrl, system.adminKey), 'dave')).client;
    ({ datasetId } = await datasetWithDemoModel(dave, 'hostile', 'Hostile'));
    image = await renderSample('dark');
  });
  afterAll(async () => {
    await system?.stop();
  });

  const send = (path: string, body: Buffer, extra: Partial<Parameters<typeof rawRequest>[1]> = {}) =>
    rawRequest(system.gatewayUrl, { path, apiKey: dave.apiKey!, contentType: FORM, body, ...extra });

  /** Answered in time with a 400 whose message matches, and the server still takes requests. */
  async function expectRefused(answer: RawAnswer, message: RegExp, status = 400): Promise<void> {
    expect(answer.timedOut).toBe(false);
    expect(`${answer.status} ${String(answer.body?.message)}`).toMatch(new RegExp(`^${status} .*(${message.source})`));
    expect((await dave.get(`/v1/datasets/${datasetId}`)).status).toBe(200);
  }

  describe('image submissions', () => {
    const path = () => `/v1/datasets/${datasetId}/classifications`;

    afterEach(async () => {
      expect(await system.db.models.ClassificationRequest.countDocuments({})).toBe(0);
      expect(await system.store.listKeys('images/')).toEqual([]);
    });

    it.each([400_000, 800_000, 2_000_000])(
      'answers 400 in seconds for a %d-byte part without Content-Disposition',
      async (size) => {
        const answer = await send(path(), form(part(['Content-Type: image/png'], Buffer.alloc(size, 7))));
        await expectRefused(answer, /Content-Disposition|no image/);
      },
    );

    it('answers 400 for a multipart Content-Type without a boundary', async () => {
      const answer = await send(path(), form(part(fileHeaders('image', 'x.png'), image)), {
        contentType: 'multipart/form-data',
      });
      await expectRefused(answer, /boundary/);
    });

    it('answers 400 for a body that ends in the middle of the image', async () => {
      const whole = form(part(fileHeaders('image', 'x.png'), image));
      const answer = await send(path(), whole.subarray(0, whole.length - 200));
      await expectRefused(answer, /closing (multipart )?boundary/);
    });

    it('drops a client that stops sending in the middle of the image, with a 408 and a closed connection', async () => {
      const whole = form(part(fileHeaders('image', 'x.png'), image));
      const answer = await send(path(), whole.subarray(0, 300), { contentLength: whole.length, after: 'wait' });
      expect(answer.timedOut).toBe(false);
      expect(answer.status).toBe(408);
      expect(answer.closed).toBe(true);
    });

    it('closes the connection of a client that half-closes before its declared length, without a 5xx', async () => {
      const whole = form(part(fileHeaders('image', 'x.png'), image));
      const answer = await send(path(), whole.subarray(0, 300), {
        contentLength: whole.length,
        after: 'end',
        untilClosed: true,
      });
      expect(answer.timedOut).toBe(false);
      expect(answer.closed).toBe(true);
      // The server may still get its answer out before closing; never a 5xx.
      const answered = answer.status === null ? 'no answer' : `${answer.status} ${String(answer.body?.error)}`;
      expect(answered).toMatch(/^(no answer|400 BAD_REQUEST)$/);
      expect((await dave.get(`/v1/datasets/${datasetId}`)).status).toBe(200);
    });

    it('answers 400 for two image parts instead of using the first', async () => {
      const one = part(fileHeaders('image', 'x.png', 'image/png'), image);
      await expectRefused(await send(path(), form(one, one)), /too many parts/);
    });

    it('answers 400 for an unknown file field and for any text field', async () => {
      await expectRefused(
        await send(path(), form(part(fileHeaders('photo', 'x.png', 'image/png'), image))),
        /unexpected file 'photo'/,
      );
      await expectRefused(
        await send(path(), form(part(fieldHeaders('note'), 'hi'), part(fileHeaders('image', 'x.png'), image))),
        /too many|unexpected/,
      );
    });
  });

  it('answers a request the HTTP parser refuses in the API error shape, and closes the connection', async () => {
    const answer = await send('/v1/datasets', Buffer.alloc(0), {
      head: 'POST /v1/datasets HTTP/1.1\r\nHost: x\r\nNot a header line\r\n\r\n',
      untilClosed: true,
    });
    expect(answer).toMatchObject({ status: 400, closed: true, timedOut: false, body: { error: 'BAD_REQUEST' } });
    expect(String(answer.body?.message)).toMatch(/malformed HTTP request/);
  });

  describe('model uploads', () => {
    const path = () => `/v1/datasets/${datasetId}/models`;
    const fields = () => [
      part(fieldHeaders('labels'), JSON.stringify(demo.labels)),
      part(fieldHeaders('input_spec'), JSON.stringify(demo.inputSpec)),
    ];
    const modelPart = () => part(fileHeaders('file', 'm.onnx'), demo.onnx);

    afterEach(async () => {
      // Only the fixture's model.
      expect(await system.db.models.ClassifierModel.countDocuments({})).toBe(1);
      expect(await system.store.listKeys('models/')).toHaveLength(1);
    });

    it('answers 400 in seconds for a part without Content-Disposition', async () => {
      const answer = await send(path(), form(...fields(), part([], Buffer.alloc(800_000, 7))));
      await expectRefused(answer, /Content-Disposition|too many|no model file/);
    });

    it('answers 400 for a missing boundary and for a body cut in the middle of the file', async () => {
      await expectRefused(
        await send(path(), form(...fields(), modelPart()), { contentType: 'multipart/form-data' }),
        /boundary/,
      );
      const whole = form(...fields(), modelPart());
      await expectRefused(await send(path(), whole.subarray(0, whole.length - 500)), /closing (multipart )?boundary/);
    });

    it('answers 400 for a field sent twice, an unknown field and a second file', async () => {
      await expectRefused(
        await send(path(), form(...fields(), part(fieldHeaders('labels'), '["a"]'), modelPart())),
        /'labels' is sent twice/,
      );
      await expectRefused(
        await send(path(), form(part(fieldHeaders('owner'), 'me'), ...fields(), modelPart())),
        /unexpected field 'owner'/,
      );
      await expectRefused(await send(path(), form(...fields(), modelPart(), modelPart())), /too many/);
      await expectRefused(
        await send(path(), form(...fields(), part(fileHeaders('weights'), demo.onnx))),
        /unexpected file field 'weights'/,
      );
    });
  });
});
