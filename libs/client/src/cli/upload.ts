// An upload with a progress bar: a fetch that sends the request's body in chunks and counts them.
import { SingleBar } from 'cli-progress';

const CHUNK = 64 * 1024;

/** A fetch for CxrClient that reports bytes sent on a bar on stderr (plain lines when it is not a terminal). */
export function uploadProgressFetch(stream: NodeJS.WriteStream = process.stderr): typeof fetch {
  return async (input: string | URL | Request, init?: RequestInit) => {
    const request = new Request(input, init);
    if (!request.body) return fetch(request);
    const body = new Uint8Array(await request.arrayBuffer());
    const bar = new SingleBar({
      stream,
      format: `${stream.isTTY ? '{bar} ' : ''}uploading {percentage}% | {sent}/{size} MB | {rate} MB/s | ETA {eta_formatted}`,
      noTTYOutput: true,
      notTTYSchedule: 1000,
      gracefulExit: false,
      hideCursor: false,
    });
    const started = Date.now();
    const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
    const payload = (sent: number) => ({
      sent: mb(sent),
      size: mb(body.length),
      rate: (((sent / 1e6) * 1000) / Math.max(1, Date.now() - started)).toFixed(1),
    });
    bar.start(body.length, 0, payload(0));
    let sent = 0;
    const chunks = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= body.length) {
          controller.close();
          bar.update(body.length, payload(body.length));
          bar.stop();
          if (stream.isTTY !== true) stream.write('uploaded; the gateway is loading and running the model once\n');
          return;
        }
        const chunk = body.subarray(sent, sent + CHUNK);
        sent += chunk.length;
        bar.update(sent, payload(sent));
        controller.enqueue(chunk);
      },
      cancel() {
        bar.stop();
      },
    });
    const headers = new Headers(request.headers);
    headers.set('content-length', String(body.length));
    try {
      return await fetch(request.url, {
        method: request.method,
        headers,
        body: chunks,
        signal: request.signal,
        duplex: 'half',
      });
    } finally {
      bar.stop();
    }
  };
}
