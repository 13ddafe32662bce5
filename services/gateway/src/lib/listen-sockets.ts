import type { Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';

/**
 * Whether this Node.js can bind several listening sockets to one port (`reusePort`, SO_REUSEPORT:
 * Node 22.12 and 23.1 on, and on Linux, where the kernel spreads new connections across them).
 */
export function reusePortSupported(
  version: string = process.versions.node,
  platform: string = process.platform,
): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return platform === 'linux' && (major > 22 || (major === 22 && minor >= 12));
}

/**
 * `count - 1` more listening sockets on `server`'s port, each handing what it accepts to `server`
 * (which then owns the connection: its timeouts, keep-alive and close apply). `server` must
 * listen with `reusePort: true` already.
 *
 * Why: libuv (1.45 on, Node 20 on) accepts one connection per listening socket per turn of the
 * event loop. Under a flood the turn is long (every open connection's request is answered in it),
 * so new connections wait in the kernel's accept queue for seconds while the ones already
 * accepted are answered again and again. With `count` sockets the kernel spreads the new
 * connections across `count` queues, and a turn takes up to `count` of them.
 *
 * Returns their close: it stops them listening at once, and its promise resolves when every
 * connection they accepted has ended. The server's own close waits only for the connections it
 * accepted itself, so: call this first, then close the server (which answers or ends the
 * connections), then await this.
 */
export async function addListeningSockets(server: HttpServer, count: number): Promise<() => Promise<void>> {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the server must listen on a TCP port first');
  const added: Server[] = [];
  const close = () =>
    Promise.all(added.map((listener) => new Promise<unknown>((resolve) => listener.close(resolve)))).then(() => {});
  try {
    for (let i = 1; i < count; i += 1) {
      const extra = createServer((socket) => server.emit('connection', socket));
      added.push(extra);
      await new Promise<void>((resolve, reject) => {
        extra.once('error', reject);
        extra.listen({ host: address.address, port: address.port, reusePort: true }, () => {
          extra.off('error', reject);
          resolve();
        });
      });
    }
  } catch (error) {
    await close();
    throw error;
  }
  return close;
}
