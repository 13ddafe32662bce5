import { execFileSync } from 'node:child_process';
import { Agent, createServer, get, type RequestListener, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { addListeningSockets, reusePortSupported } from './listen-sockets';

jest.setTimeout(30_000);

/** An HTTP server on 127.0.0.1 listening with reusePort, plus `count - 1` more sockets. */
async function serve(
  count: number,
  handler: RequestListener = (_request, response) => response.end('ok'),
): Promise<{ server: Server; port: number; closeAdded: () => Promise<void>; close: () => Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0, reusePort: true }, resolve));
  const closeAdded = await addListeningSockets(server, count);
  const { port } = server.address() as AddressInfo;
  const close = async () => {
    const added = closeAdded();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await added;
  };
  return { server, port, closeAdded, close };
}

/** `n` GETs at once through `agent`, each resolving with its status. */
function requests(port: number, agent: Agent, n: number): Promise<number[]> {
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<number>((resolve, reject) => {
          get({ host: '127.0.0.1', port, agent }, (response) => {
            response.resume();
            resolve(response.statusCode ?? 0);
          }).on('error', reject);
        }),
    ),
  );
}

/**
 * Opens `n` connections to `port` from another process while this one's event loop is blocked
 * (execFileSync), so all of them wait in the kernel's accept queues; then counts the ones the
 * server takes in the turn that takes the first.
 */
async function acceptedInOneTurn(server: Server, port: number, n: number): Promise<number> {
  let accepted = 0;
  const count = () => (accepted += 1);
  server.on('connection', count);
  const script = `let open = 0; for (let i = 0; i < ${n}; i++) require('node:net').connect(${port}, '127.0.0.1', () => { if (++open === ${n}) process.exit(0); });`;
  // The turn that takes the first one takes the others it can in the same poll phase; the check
  // phase (setImmediate) comes right after it.
  const inFirstTurn = new Promise<number>((resolve) =>
    server.once('connection', () => setImmediate(() => resolve(accepted))),
  );
  execFileSync(process.execPath, ['-e', script], { timeout: 10_000 });
  // Let the rest be taken (and closed by their peer) before the server closes.
  while (accepted < n) await new Promise((resolve) => setImmediate(resolve));
  server.off('connection', count);
  return await inFirstTurn;
}

describe('reusePortSupported', () => {
  it('is true from Node 22.12 on, on Linux only', () => {
    expect(reusePortSupported('20.20.2', 'linux')).toBe(false);
    expect(reusePortSupported('22.11.0', 'linux')).toBe(false);
    expect(reusePortSupported('22.12.0', 'linux')).toBe(true);
    expect(reusePortSupported('23.1.0', 'linux')).toBe(true);
    expect(reusePortSupported('24.22.3', 'linux')).toBe(true);
    expect(reusePortSupported('24.22.3', 'darwin')).toBe(false);
  });

  it('holds for the Node.js the project runs on (package.json engines, infra/deps.sh)', () => {
    expect(reusePortSupported()).toBe(true);
  });
});

describe('addListeningSockets', () => {
  it('takes one waiting connection per turn with one socket, and several with eight', async () => {
    const one = await serve(1);
    try {
      // libuv's behaviour that the extra sockets are for: if this changes, they are not needed.
      expect(await acceptedInOneTurn(one.server, one.port, 48)).toBe(1);
    } finally {
      await one.close();
    }
    const eight = await serve(8);
    try {
      // 48 connections hashed over 8 queues: each queue is left empty with probability (7/8) ** 48,
      // about 0.2 %, so fewer than 4 of them holding one is all but impossible.
      expect(await acceptedInOneTurn(eight.server, eight.port, 48)).toBeGreaterThanOrEqual(4);
    } finally {
      await eight.close();
    }
  });

  it('hands every connection to the server, and stops listening at once, its connections left to the server', async () => {
    const { server, port, closeAdded, close } = await serve(4);
    let accepted = 0;
    server.on('connection', () => (accepted += 1));
    // Kept open after their answer: the kernel spreads the 32 connections over the four sockets.
    const agent = new Agent({ keepAlive: true, maxSockets: 32 });
    expect(await requests(port, agent, 32)).toEqual(Array(32).fill(200));
    expect(accepted).toBe(32);
    let closed = false;
    const added = closeAdded().then(() => (closed = true));
    // The connections stay the server's: the same 32 are answered again, no new one made, and the
    // close waits for the ones the added sockets accepted.
    expect(await requests(port, agent, 32)).toEqual(Array(32).fill(200));
    expect(accepted).toBe(32);
    expect(closed).toBe(false);
    agent.destroy();
    await added;
    await close();
    const refused = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.on('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
  });

  it("closes once the server has answered every request they brought, which the server's close does not wait for", async () => {
    // Each request is held until released, as a ?wait long-poll is until the gateway closes, and
    // then answered a moment later, as the long-poll is once it has read the request's state.
    let release = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    let answered = 0;
    const { server, port, closeAdded } = await serve(8, (_request, response) => {
      void released.then(() =>
        setTimeout(() => {
          response.setHeader('connection', 'close');
          response.end('ok');
          answered += 1;
        }, 20),
      );
    });
    let received = 0;
    server.on('request', () => (received += 1));
    const agent = new Agent({ keepAlive: false, maxSockets: 32 });
    const answers = requests(port, agent, 32);
    while (received < 32) await new Promise((resolve) => setImmediate(resolve));
    // In the gateway's order: the added sockets' close, then the server's, then its answers.
    const added = closeAdded();
    const serverClosed = new Promise((resolve) => server.close(resolve));
    release();
    await added;
    // Nothing the added sockets accepted is still being answered when their close resolves.
    expect(answered).toBe(32);
    expect(await answers).toEqual(Array(32).fill(200));
    await serverClosed;
  });

  it('needs a server that listens on a TCP port', async () => {
    await expect(addListeningSockets(createServer(), 2)).rejects.toThrow('must listen on a TCP port');
  });
});
