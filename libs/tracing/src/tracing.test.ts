import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import {
  childOf,
  formatTraceparent,
  idsOnlyTracer,
  inSpan,
  parseTraceparent,
  startTracing,
  type Span,
  type SpanEnd,
} from './index';

// One test starts a Node process with tsx and waits for its export: seconds on a loaded machine.
jest.setTimeout(30_000);

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

describe('traceparent', () => {
  it('reads a W3C traceparent and writes it back the same', () => {
    const header = `00-${TRACE}-${SPAN}-01`;
    expect(parseTraceparent(header)).toEqual({ traceId: TRACE, spanId: SPAN, flags: 1 });
    expect(formatTraceparent(parseTraceparent(header)!)).toBe(header);
  });

  it('ignores what the spec says to ignore: malformed, version ff, zero ids, extra fields in version 00', () => {
    for (const bad of [
      undefined,
      ['a'],
      'garbage',
      `00-${TRACE.toUpperCase()}-${SPAN}-01`,
      `ff-${TRACE}-${SPAN}-01`,
      `00-${'0'.repeat(32)}-${SPAN}-01`,
      `00-${TRACE}-${'0'.repeat(16)}-01`,
      `00-${TRACE}-${SPAN}-01-extra`,
    ]) {
      expect(parseTraceparent(bad)).toBeNull();
    }
    // A later version may add fields; its first four are read.
    expect(parseTraceparent(`01-${TRACE}-${SPAN}-00-more`)).toEqual({ traceId: TRACE, spanId: SPAN, flags: 0 });
  });

  it('makes a child in the same trace with a new span id, or a new sampled trace', () => {
    const child = childOf({ traceId: TRACE, spanId: SPAN, flags: 1 });
    expect(child.traceId).toBe(TRACE);
    expect(child.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(child.spanId).not.toBe(SPAN);
    const root = childOf(null);
    expect(root.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(root.flags).toBe(1);
  });
});

describe('inSpan', () => {
  const recording = () => {
    const ends: (SpanEnd | undefined)[] = [];
    const span: Span = { ...idsOnlyTracer.start('work', null), end: (outcome) => ends.push(outcome) };
    return { span, ends };
  };

  it('ends the span once with the attributes of the result, and returns the result', async () => {
    const { span, ends } = recording();
    await expect(
      inSpan(
        span,
        async () => 'ack',
        (d) => ({ disposition: d }),
      ),
    ).resolves.toBe('ack');
    expect(ends).toEqual([{ attributes: { disposition: 'ack' } }]);
  });

  it('ends the span once, failed with the error, and throws it on', async () => {
    const { span, ends } = recording();
    const error = new Error('broker gone');
    await expect(inSpan(span, () => Promise.reject(error))).rejects.toBe(error);
    expect(ends).toEqual([{ failed: error }]);
  });
});

describe('startTracing', () => {
  it('only makes ids when OTEL_EXPORTER_OTLP_ENDPOINT is not set', () => {
    expect(startTracing('cxr-test', {})).toBe(idsOnlyTracer);
  });

  describe('with an OTLP endpoint', () => {
    let server: Server;
    const received: { url: string; body: string }[] = [];
    let endpoint = '';
    beforeAll(async () => {
      server = createServer((request, response) => {
        let body = '';
        request.on('data', (chunk: Buffer) => (body += chunk.toString()));
        request.on('end', () => {
          received.push({ url: request.url ?? '', body });
          response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const address = server.address();
      endpoint = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    });
    afterAll(async () => {
      await new Promise((resolve) => server.close(resolve));
    });

    // In a child process, as a service runs: the exporter loads its HTTP agent with a dynamic
    // import, which jest's module sandbox refuses.
    it("exports each span to the collector under its parent's trace, named as it ended", async () => {
      const code = `
        const { startTracing, idsOnlyTracer } = require(process.env.TRACING_MODULE);
        const tracer = startTracing('cxr-test');
        if (tracer === idsOnlyTracer) throw new Error('no exporter');
        const span = tracer.start('HTTP request', { traceId: '${TRACE}', spanId: '${SPAN}', flags: 1 });
        span.end({ name: 'POST /v1/things', attributes: { 'http.response.status_code': 202 } });
        tracer.close().then(() => console.log(span.traceparent()));
      `;
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '-e', code], {
        env: { ...process.env, TRACING_MODULE: resolve(__dirname, 'index.ts'), OTEL_EXPORTER_OTLP_ENDPOINT: endpoint },
        timeout: 20_000,
      });
      expect(stdout.trim()).toMatch(new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
      expect(received.map((r) => r.url)).toEqual(['/v1/traces']);
      const body = received[0]!.body;
      expect(body).toContain(TRACE);
      expect(body).toContain(SPAN);
      expect(body).toContain('POST /v1/things');
      expect(body).toContain('cxr-test');
    });
  });
});
