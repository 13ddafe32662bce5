// The Grafana dashboard and the Prometheus rules, checked for shape (no Grafana or promtool
// here): every panel queries something, every alert is complete, the queues they watch are the
// real ones (libs/broker/src/topology.ts), and every metric they read is listed in the README.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { Topology } from '@cxr/broker';

const DIR = join(__dirname, '../../infra/grafana');

interface Dashboard {
  uid: string;
  templating: { list: { name: string; type: string }[] };
  panels: {
    id: number;
    title: string;
    datasource: { uid: string };
    gridPos: { x: number; y: number; w: number; h: number };
    targets: { refId: string; expr: string }[];
  }[];
}
interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: { severity: string };
  annotations: { summary: string };
}

const dashboard = JSON.parse(readFileSync(join(DIR, 'cxr-classify.json'), 'utf8')) as Dashboard;
const rules = (parse(readFileSync(join(DIR, 'alerts.yaml'), 'utf8')) as { groups: { name: string; rules: Rule[] }[] })
  .groups;
const readme = readFileSync(join(DIR, 'README.md'), 'utf8');
const allExprs = [
  ...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)),
  ...rules.flatMap((g) => g.rules.map((r) => r.expr)),
];

/** The metric names a PromQL expression reads (histogram series by their family name). */
function metricNames(expr: string): string[] {
  const names = expr.match(/\b(cxr|rabbitmq|kube)_[a-z_]+/g) ?? [];
  return names.map((n) => n.replace(/_(bucket|sum|count)$/, ''));
}

/** The queue names an expression selects, from queue="…" and queue=~"a|b". */
function queueNames(expr: string): string[] {
  return [...expr.matchAll(/queue=~?"([^"]+)"/g)].flatMap((m) => m[1]!.split('|'));
}

describe('the Grafana dashboard', () => {
  it('has unique panel ids, a query in every panel, and reads the chosen Prometheus data source', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(dashboard.templating.list).toContainEqual(
      expect.objectContaining({ name: 'datasource', type: 'datasource' }),
    );
    for (const panel of dashboard.panels) {
      expect([panel.title, panel.datasource.uid]).toEqual([panel.title, '${datasource}']);
      expect(panel.targets.length).toBeGreaterThan(0);
      for (const t of panel.targets) expect(t.expr.trim()).not.toBe('');
      expect(panel.gridPos.x + panel.gridPos.w).toBeLessThanOrEqual(24);
    }
  });

  it('shows throughput, latency percentiles, queue depth, replicas, refusals and errors', () => {
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)).join('\n');
    for (const family of [
      'cxr_results_recorded_total',
      'cxr_results_end_to_end_seconds_bucket',
      'rabbitmq_detailed_queue_messages_ready',
      'kube_deployment_status_replicas',
      'cxr_results_refused_total',
      'cxr_gateway_http_request_duration_seconds_count{status_code=~"5.."',
    ]) {
      expect(exprs).toContain(family);
    }
    expect(exprs).toMatch(/histogram_quantile\(0\.99/);
  });
});

describe('the alert rules', () => {
  const byName = new Map(rules.flatMap((g) => g.rules).map((r) => [r.alert, r]));

  it('are complete: a name, an expression, a severity and a summary each', () => {
    expect(byName.size).toBeGreaterThanOrEqual(6);
    for (const rule of byName.values()) {
      expect(rule.expr.trim()).not.toBe('');
      expect(['warning', 'critical']).toContain(rule.labels.severity);
      expect(rule.annotations.summary.length).toBeGreaterThan(10);
      expect(rule.for ?? '0s').toMatch(/^\d+[smh]$/);
    }
  });

  it('fire on backlog age, any refused result, any dead letter and services not ready', () => {
    expect(byName.get('CxrJobsBacklogAging')?.expr).toContain(`queue="${Topology.jobsQueue}"`);
    expect(byName.get('CxrResultsRefused')?.expr).toMatch(/cxr_results_refused_total.*\) > 0$/s);
    expect(byName.get('CxrDeadLetters')?.expr).toMatch(/> 0$/);
    expect(queueNames(byName.get('CxrDeadLetters')?.expr ?? '').sort()).toEqual(
      [Topology.jobsDeadQueue, Topology.resultsDeadQueue, Topology.invalidQueue].sort(),
    );
    expect(byName.get('CxrServiceNotReady')?.expr).toContain('kube_deployment_status_replicas_unavailable');
  });
});

describe('the dashboard and the rules together', () => {
  it('watch only queues that exist', () => {
    const real = new Set<string>(Object.values(Topology));
    const watched = allExprs.flatMap(queueNames);
    expect(watched.length).toBeGreaterThan(5);
    for (const queue of watched) expect(real).toContain(queue);
  });

  it('read only cxr_ metrics that a service registers', () => {
    const registered = new Set(
      ['gateway', 'inference', 'results'].flatMap((service) =>
        [
          ...readFileSync(join(__dirname, `../../services/${service}/src/metrics.ts`), 'utf8').matchAll(
            /name: '(cxr_[a-z_]+)'/g,
          ),
        ].map((m) => m[1]!),
      ),
    );
    expect(registered.size).toBeGreaterThan(10);
    const read = [...new Set(allExprs.flatMap(metricNames))].filter((name) => name.startsWith('cxr_'));
    expect(read.filter((name) => !registered.has(name))).toEqual([]);
  });

  it('read only metrics the README lists', () => {
    const names = new Set(allExprs.flatMap(metricNames));
    expect(names.size).toBeGreaterThan(8);
    for (const name of names) expect([name, readme.includes(`\`${name}\``)]).toEqual([name, true]);
  });
});
