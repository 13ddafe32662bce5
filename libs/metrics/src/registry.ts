import type { FastifyPluginAsync } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Registry, type CounterConfiguration } from 'prom-client';

export { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * A service's metrics: its own families plus prom-client's process and Node.js ones (CPU,
 * memory, handles, GC, event loop lag). One per process; never prom-client's global registry,
 * so tests may make several.
 */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * GET /metrics in the Prometheus text format. It shows counts and timings only (no ids, keys or
 * secrets); in production, keep it on the cluster network like the probes.
 */
export const metricsRoute: FastifyPluginAsync<{ registry: Registry }> = async (app, { registry }) => {
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) =>
    reply.type(registry.contentType).send(await registry.metrics()),
  );
};

/**
 * A counter whose value another object already counts (a cache's hits, a pool's restarts): read
 * at scrape time, so there is one count, not two.
 */
export function counterOf(
  registry: Registry,
  config: Pick<CounterConfiguration<string>, 'name' | 'help'>,
  read: () => number,
): Counter {
  return new Counter({
    ...config,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** A gauge read at scrape time. */
export function gaugeOf(
  registry: Registry,
  config: Pick<CounterConfiguration<string>, 'name' | 'help'>,
  read: () => number,
): Gauge {
  return new Gauge({
    ...config,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

/**
 * A counter with one label whose values are all known: each starts at 0, so a rate is defined
 * from the first scrape and /stats shows every value.
 */
export function counterBy<L extends string>(
  registry: Registry,
  config: Pick<CounterConfiguration<L>, 'name' | 'help'> & { label: L; values: readonly string[] },
): Counter<L> {
  const counter = new Counter<L>({
    name: config.name,
    help: config.help,
    labelNames: [config.label],
    registers: [registry],
  });
  for (const value of config.values) counter.inc({ [config.label]: value } as Partial<Record<L, string>>, 0);
  return counter;
}

/** A labelled counter's values by one label, summed over the others (what /stats shows). */
export async function countsBy<L extends string>(counter: Counter<L>, label: L): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const { labels, value } of (await counter.get()).values) {
    const key = String(labels[label]);
    counts[key] = (counts[key] ?? 0) + value;
  }
  return counts;
}
