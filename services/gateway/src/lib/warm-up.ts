import { Agent, createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SubmissionGate } from './admission';

/**
 * Before the gateway listens: sends `rounds` submissions through the gate's listener and Node's
 * HTTP server over loopback, on a server of its own on an ephemeral port, so that the first
 * flood meets compiled code. A fresh process runs JavaScript unoptimised, and under a flood its
 * event loop turns slowly enough that new connections wait in the kernel's queue (libuv accepts
 * one per turn). This gate holds one slot with a first request, so all the others are shed;
 * nothing is stored, counted or logged.
 */
export async function warmUpShedding(
  rounds: number,
  requestId: (raw: IncomingMessage) => string,
): Promise<{ shed: number; ms: number }> {
  const started = performance.now();
  const gate = new SubmissionGate(1, undefined);
  const held: ServerResponse[] = [];
  const server = createServer(
    gate.listener(
      (request, response) => {
        request.resume();
        held.push(response);
      },
      requestId,
      () => undefined,
      () => false,
    ),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  const body = Buffer.alloc(64 * 1024);
  let shed = 0;
  const post = () =>
    new Promise<void>((resolve) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/v1/datasets/000000000000000000000000/classifications',
          agent,
          headers: { 'content-type': 'multipart/form-data; boundary=x', 'content-length': body.length },
        },
        (response) => {
          if (response.statusCode === 503) shed += 1;
          response.resume();
          response.on('end', resolve);
        },
      );
      req.on('error', () => resolve());
      req.end(body);
    });
  try {
    // The first takes the slot and is held; the rest are shed.
    const first = post();
    let left = rounds;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (left-- > 0) await post();
      }),
    );
    for (const response of held) response.end();
    await first;
  } finally {
    agent.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  return { shed, ms: performance.now() - started };
}
