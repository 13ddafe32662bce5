import { Writable } from 'node:stream';
import pino from 'pino';
import { redactPaths } from './index';

describe('redactPaths', () => {
  it('keeps API keys and dispatch tokens out of log lines', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = pino({ redact: { paths: redactPaths, censor: '[redacted]' } }, sink);
    logger.info({ req: { headers: { authorization: 'Bearer cxr_abc' } }, job: { dispatchToken: 'tok123' } }, 'x');
    expect(lines.join('')).not.toMatch(/cxr_abc|tok123/);
    expect(lines.join('')).toContain('[redacted]');
  });
});
