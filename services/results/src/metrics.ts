import { Counter, counterBy, countsBy, Histogram, type Registry } from '@cxr/metrics';

/** `mislabelled`: a classification naming labels that are not its model's. */
export const REFUSAL_REASONS = ['forged', 'stale', 'replayed', 'mismatched', 'mislabelled'] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

const OUTCOMES = ['classified', 'failed'] as const;

/** The results service's families; README "Metrics" lists them. */
export function resultsMetrics(registry: Registry) {
  const registers = [registry];
  const counter = (name: string, help: string) => new Counter({ name, help, registers });
  const recorded = counterBy(registry, {
    name: 'cxr_results_recorded_total',
    help: "Outcomes recorded as their request's result, by outcome (classified, failed).",
    label: 'outcome',
    values: OUTCOMES,
  });
  const refused = counterBy(registry, {
    name: 'cxr_results_refused_total',
    help: 'Results refused, by reason (forged, stale, replayed, mismatched, mislabelled).',
    label: 'reason',
    values: REFUSAL_REASONS,
  });
  return {
    recorded,
    refused,
    endToEnd: new Histogram({
      name: 'cxr_results_end_to_end_seconds',
      help: 'From the submission (the request created) to its outcome recorded, by outcome.',
      labelNames: ['outcome'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers,
    }),
    duplicates: counter(
      'cxr_results_duplicates_total',
      'Results for a request that had its result already: no change.',
    ),
    started: counter('cxr_results_started_total', '"started" reports that moved a request to assigned.'),
    deadLettered: counter(
      'cxr_results_dead_lettered_total',
      'Jobs dead-lettered after their delivery limit whose request is to fail.',
    ),
    invalid: counter('cxr_results_invalid_messages_total', 'Messages sent to the invalid queue.'),
    heldThroughOutage: counter(
      'cxr_results_held_through_outage_total',
      "Messages held through the database's outage and handled again when it came back.",
    ),
  };
}
export type ResultsMetrics = ReturnType<typeof resultsMetrics>;

/** GET /stats: the same counters as JSON (what the tests and the chaos tool read). */
export async function resultsStats(metrics: ResultsMetrics): Promise<Record<string, unknown>> {
  const value = async (counter: Counter) => (await counter.get()).values[0]?.value ?? 0;
  const recorded = await countsBy(metrics.recorded, 'outcome');
  return {
    recorded: Object.values(recorded).reduce((a, b) => a + b, 0),
    duplicates: await value(metrics.duplicates),
    started: await value(metrics.started),
    deadLettered: await value(metrics.deadLettered),
    invalid: await value(metrics.invalid),
    heldThroughOutage: await value(metrics.heldThroughOutage),
    refused: await countsBy(metrics.refused, 'reason'),
  };
}
