// Ports for what the tests start and restart on the same port: the services of a system (its
// gatewayUrl does not change across restarts) and the TCP proxies that are cut and restored. A
// port must stay free while its listener is down. One from listen(0) lies in the kernel's
// ephemeral range (32768 to 60999 on Linux), which outgoing connections also draw from: one of the
// tests' many client connections could be given it, and the restart would fail with EADDRINUSE.
// These come from below that range (and above the stacks' own ports, 27017 + 10 the highest), in
// a band for each jest worker, each handed out once per test file; one something else holds is
// skipped.
import { createServer } from 'node:net';

const PORT_BAND = 160;
const portBandStart = 28_000 + ((Number(process.env.JEST_WORKER_ID ?? '1') - 1) % 25) * PORT_BAND;
let nextPort = portBandStart;

/** Whether a server could listen on 127.0.0.1:`port` now. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });
}

/** A port to listen on, and to listen on again after a restart: see above. */
export async function servicePort(): Promise<number> {
  while (nextPort < portBandStart + PORT_BAND) {
    const port = nextPort;
    nextPort += 1;
    if (await portFree(port)) return port;
  }
  throw new Error(`no free port left in ${portBandStart} to ${portBandStart + PORT_BAND - 1}`);
}
