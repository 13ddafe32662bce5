// A flood against the system `./cxr up` started: N submissions of the demo image, C at a time,
// as fast as the gateway answers, from one API key and one address. Prints how many were
// accepted (202) and shed (429 or 503, each with its Retry-After), the answer times (p50, p99,
// max) and the gateway's stages of the accepted ones (from their Server-Timing headers), then
// waits for every accepted request to end and prints each service's peak RSS
// (gateway, results, inference) over the flood and that drain. Exit code 1 when an answer was
// neither of those, came without Retry-After when shed, or an accepted request did not end
// classified.
// --image-mib N sends a square PNG of random pixels of about N MiB instead (e.g. 17, to measure
// the gateway's memory under large uploads).
//   npm run flood -- [--requests 2000] [--concurrency 300] [--timeout 600] [--image-mib 17]
import * as http from 'node:http';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { renderSample } from '@cxr/demo-model';
import { multipartFile, postBytes } from './http-upload';
import { percentile, serverTimings, stageMedians } from './measure';

interface Answer {
  status: number;
  ms: number;
  retryAfter: string | undefined;
  id: string | undefined;
  /** The gateway's stages of an accepted submission (its Server-Timing header). */
  stages: Map<string, number>;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '2000' },
      concurrency: { type: 'string', default: '300' },
      timeout: { type: 'string', default: '600' },
      'image-mib': { type: 'string' },
    },
  });
  const total = Number(values.requests);
  const concurrency = Number(values.concurrency);
  const timeoutMs = Number(values.timeout) * 1000;
  if (![total, concurrency, timeoutMs].every((n) => Number.isInteger(n) && n > 0))
    throw new Error('--requests, --concurrency and --timeout take whole numbers above 0');
  const state = resolve(process.env.CXR_STATE_DIR ?? join(__dirname, '../../.state/dev'));
  const { apiKey, datasetId } = JSON.parse(readFileSync(join(state, 'demo.json'), 'utf8')) as {
    apiKey: string;
    datasetId: string;
  };
  const gatewayUrl = process.env.GATEWAY_URL ?? 'http://127.0.0.1:8080';

  const imageMiB = values['image-mib'] === undefined ? undefined : Number(values['image-mib']);
  if (imageMiB !== undefined && !(imageMiB > 0 && imageMiB <= 64)) throw new Error('--image-mib takes 0 to 64');
  const image = imageMiB
    ? await noisePng(imageMiB)
    : await renderSample('striped', { width: 512, height: 512, seed: 7 });
  const { body, contentType } = multipartFile('image', image, 'x.png', 'image/png');
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const post = async (): Promise<Answer> => {
    const t0 = performance.now();
    const response = await postBytes(
      `${gatewayUrl}/v1/datasets/${datasetId}/classifications`,
      body,
      { authorization: `Bearer ${apiKey}`, 'content-type': contentType },
      agent,
    );
    let id: string | undefined;
    try {
      id = (JSON.parse(response.text) as { id?: string }).id;
    } catch {
      // not JSON: counted by its status
    }
    const retryAfter = response.headers['retry-after'];
    const stages = serverTimings(response.headers['server-timing']);
    return { status: response.status, ms: performance.now() - t0, retryAfter, id, stages };
  };

  // Peak RSS of every service (gateway, results, inference-N), sampled every 100 ms.
  const servicesDir = join(state, 'services');
  const services = readdirSync(servicesDir)
    .filter((f) => f.endsWith('.child.pid'))
    .map((f) => ({
      name: f.replace(/\.child\.pid$/, ''),
      pid: Number(readFileSync(join(servicesDir, f), 'utf8').trim()),
    }));
  const rssMiB = (pid: number) => {
    try {
      const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return rss ? Number(rss[1]) / 1024 : 0;
    } catch {
      return 0; // the service restarted: its new pid is not followed
    }
  };
  const startRss = new Map(services.map((s) => [s.name, rssMiB(s.pid)]));
  const peakRss = new Map(startRss);
  const sampler = setInterval(() => {
    for (const s of services) peakRss.set(s.name, Math.max(peakRss.get(s.name) ?? 0, rssMiB(s.pid)));
  }, 100);

  const answers: Answer[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next += 1;
        answers.push(
          await post().catch(() => ({ status: 0, ms: NaN, retryAfter: undefined, id: undefined, stages: new Map() })),
        );
      }
    }),
  );
  const wall = (performance.now() - started) / 1000;
  agent.destroy();

  const byStatus = new Map<number, number>();
  for (const a of answers) byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1);
  const shed = answers.filter((a) => a.status === 429 || a.status === 503);
  const shedWithoutRetryAfter = shed.filter((a) => a.retryAfter === undefined).length;
  const times = answers.map((a) => a.ms).filter((ms) => Number.isFinite(ms));
  times.sort((a, b) => a - b);
  const accepted = answers.filter((a) => a.status === 202 && a.id).map((a) => a.id!);
  console.log(
    `flood: ${total} submissions of ${(image.length / 1024 / 1024).toFixed(1)} MiB, ${concurrency} at a time, one key, in ${wall.toFixed(1)} s`,
  );
  console.log(
    `answers: ${[...byStatus]
      .sort((a, b) => a[0] - b[0])
      .map(([status, n]) => `${status === 0 ? 'connection error' : status} ${n}`)
      .join(', ')}; shed without Retry-After: ${shedWithoutRetryAfter}`,
  );
  const timesOf = (status: number) =>
    answers.filter((a) => a.status === status && Number.isFinite(a.ms)).map((a) => a.ms);
  console.log(
    `answer time: p50 ${percentile(times, 50).toFixed(0)} ms, p99 ${percentile(times, 99).toFixed(0)} ms, ` +
      `max ${times[times.length - 1]?.toFixed(0) ?? '-'} ms (${[...byStatus.keys()]
        .sort()
        .map((status) => `${status}: p99 ${percentile(timesOf(status), 99).toFixed(0)} ms`)
        .join(', ')})`,
  );
  const taken = answers.filter((a) => a.status === 202 && Number.isFinite(a.ms));
  if (taken.length > 0) {
    // What an accepted submission's time was spent on in the gateway's router; the rest of its
    // answer time is outside it (the kernel's accept queue, the connection, the answer's way back).
    const slowest = taken.reduce((a, b) => (b.ms > a.ms ? b : a));
    console.log(
      `accepted, in the gateway (Server-Timing, ms): p50 ${stageMedians(taken.map((a) => a.stages))}; ` +
        `the slowest answer (${slowest.ms.toFixed(0)} ms) ${stageMedians([slowest.stages])}`,
    );
  }

  // Every accepted request must end, classified.
  const ends = new Map<string, string>();
  const deadline = Date.now() + timeoutMs;
  const drainStarted = performance.now();
  for (const id of accepted) {
    for (;;) {
      const state = await new Promise<string>((done) => {
        http
          .get(
            `${gatewayUrl}/v1/classifications/${id}?wait=30`,
            { headers: { authorization: `Bearer ${apiKey}` } },
            (response) => {
              let text = '';
              response.setEncoding('utf8');
              response.on('data', (piece: string) => (text += piece));
              response.on('end', () => {
                try {
                  done((JSON.parse(text) as { state?: string }).state ?? `HTTP ${response.statusCode}`);
                } catch {
                  done(`HTTP ${response.statusCode}`);
                }
              });
            },
          )
          .on('error', () => done('unreachable'));
      });
      if (state === 'classified' || state === 'failed' || Date.now() > deadline) {
        ends.set(id, state);
        break;
      }
      if (state === 'unreachable' || state.startsWith('HTTP 429')) await sleep(1000);
    }
  }
  const ended = new Map<string, number>();
  for (const s of ends.values()) ended.set(s, (ended.get(s) ?? 0) + 1);
  console.log(
    `accepted ${accepted.length}: ${[...ended].map(([s, n]) => `${s} ${n}`).join(', ')} ` +
      `(all ended ${((performance.now() - drainStarted) / 1000).toFixed(1)} s after the flood)`,
  );
  console.log(
    `peak RSS over the flood and the drain (before the flood): ${services
      .map((s) => `${s.name} ${peakRss.get(s.name)!.toFixed(0)} MiB (${startRss.get(s.name)!.toFixed(0)})`)
      .join(', ')}`,
  );
  clearInterval(sampler);
  const bad =
    answers.some((a) => ![202, 429, 503].includes(a.status)) ||
    shedWithoutRetryAfter > 0 ||
    [...ends.values()].some((s) => s !== 'classified');
  if (bad) process.exitCode = 1;
}

/** A square RGB PNG of random pixels, which PNG cannot compress: about `mib` MiB. */
async function noisePng(mib: number): Promise<Buffer> {
  const side = Math.ceil(Math.sqrt((mib * 1024 * 1024) / 3));
  const pixels = randomBytes(side * side * 3);
  return sharp(pixels, { raw: { width: side, height: side, channels: 3 } })
    .png({ compressionLevel: 1 })
    .toBuffer();
}

main().catch((error: unknown) => {
  console.error(`[flood] ${(error as Error).message}`);
  process.exit(1);
});
