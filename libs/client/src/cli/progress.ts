// A progress bar on stderr with rate and ETA (cli-progress). On a terminal it redraws one line;
// otherwise (a pipe, a log, a test) it prints a plain line every few seconds and one at the end.
import { SingleBar } from 'cli-progress';
import type { Summary } from './classify';

export interface Progress {
  tick(summary: Summary): void;
  stop(): void;
}

export function progressBar(total: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  const started = Date.now();
  const tty = stream.isTTY === true;
  const bar = new SingleBar({
    stream,
    format: `${tty ? '{bar} ' : ''}{value}/{total} images | {rate}/s | ETA {eta_formatted} | elapsed {duration_formatted} | classified {classified} failed {failed} errors {errors}`,
    noTTYOutput: true,
    notTTYSchedule: 2000,
    gracefulExit: false,
    hideCursor: false,
    etaBuffer: 50,
    barsize: 24,
  });
  const counts = (summary?: Summary) => ({
    rate: (((summary ? total - summary.skipped : 0) * 1000) / Math.max(1, Date.now() - started)).toFixed(1),
    classified: summary?.classified ?? 0,
    failed: summary?.failed ?? 0,
    errors: (summary?.errors ?? 0) + (summary?.pending ?? 0),
  });
  bar.start(total, 0, counts());
  return {
    tick(summary) {
      bar.update(total - summary.skipped, counts(summary));
    },
    stop() {
      bar.stop();
    },
  };
}
