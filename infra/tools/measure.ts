/** The p-th percentile (nearest rank) of `values`, which need not be sorted; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}

/**
 * The stages of a `Server-Timing` header (`name;dur=ms, …`) with their durations; entries without
 * a duration are left out.
 */
export function serverTimings(header: string | string[] | undefined): Map<string, number> {
  const stages = new Map<string, number>();
  // Several Server-Timing headers are one list.
  for (const entry of [header ?? []].flat().join(',').split(',')) {
    const [name, ...params] = entry.trim().split(';');
    const dur = params.map((param) => /^\s*dur=([0-9.]+)\s*$/.exec(param)?.[1]).find((value) => value !== undefined);
    if (name?.trim() && dur !== undefined) stages.set(name.trim(), Number(dur));
  }
  return stages;
}

/** `name p50` for each stage seen in `samples` (one Map per request), in the order first seen. */
export function stageMedians(samples: readonly Map<string, number>[]): string {
  const names = [...new Set(samples.flatMap((sample) => [...sample.keys()]))];
  return names
    .map((name) => {
      const values = samples.flatMap((sample) => (sample.has(name) ? [sample.get(name)!] : []));
      return `${name} ${percentile(values, 50).toFixed(1)}`;
    })
    .join(', ');
}
