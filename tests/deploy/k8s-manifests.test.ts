// Renders each Kustomize overlay under infra/k8s and validates every resource with kubeconform
// -strict against schemas of Kubernetes and KEDA made offline (infra/k8s/tools.sh builds the
// tools and schemas once, into the cache dir), then checks what the schemas cannot: the KEDA
// trigger names the real jobs queue, every Secret key read is documented, pods are locked down.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { Topology } from '@cxr/broker';

const ROOT = join(__dirname, '../..');
const K8S = join(ROOT, 'infra/k8s');
const OVERLAYS = ['keda', 'hpa'] as const;

interface Tools {
  KUSTOMIZE: string;
  KUBECONFORM: string;
  K8S_SCHEMAS: string;
}

// Loose shapes of the rendered resources: only the fields the assertions read.
interface Container {
  name: string;
  env?: { name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  envFrom?: { secretRef?: unknown }[];
  livenessProbe?: { httpGet?: { path: string } };
  readinessProbe?: { httpGet?: { path: string } };
  resources?: { requests?: Record<string, unknown>; limits?: Record<string, unknown> };
  securityContext?: {
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[] };
  };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  containers: Container[];
  automountServiceAccountToken?: boolean;
  securityContext?: { runAsNonRoot?: boolean; seccompProfile?: { type: string } };
  volumes?: { name: string; emptyDir?: unknown }[];
}
interface Resource {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: {
    replicas?: number;
    template?: { spec: PodSpec };
    triggers?: { type: string; metadata: Record<string, string>; authenticationRef?: { name: string } }[];
    secretTargetRef?: { parameter: string; name: string; key: string }[];
    scaleTargetRef?: { name: string };
    minReplicaCount?: number;
  };
}

function tools(): Tools {
  const out = execFileSync('bash', [join(K8S, 'tools.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = out.trim().split('\n');
  const value = (name: keyof Tools) => {
    const line = lines.find((l) => l.startsWith(`${name}=`));
    if (!line) throw new Error(`infra/k8s/tools.sh printed no ${name}`);
    return line.slice(name.length + 1);
  };
  return { KUSTOMIZE: value('KUSTOMIZE'), KUBECONFORM: value('KUBECONFORM'), K8S_SCHEMAS: value('K8S_SCHEMAS') };
}

function kubeconform(t: Tools, yaml: string) {
  return spawnSync(
    t.KUBECONFORM,
    ['-strict', '-summary', '-schema-location', join(t.K8S_SCHEMAS, '{{ .ResourceKind }}{{ .KindSuffix }}.json'), '-'],
    { input: yaml, encoding: 'utf8' },
  );
}

const secretExampleKeys = new Set(
  readFileSync(join(K8S, 'secrets.example.env'), 'utf8')
    .split('\n')
    .filter((line) => /^[A-Z][A-Z0-9_]*=/.test(line))
    .map((line) => line.split('=')[0]),
);

describe('the Kubernetes manifests', () => {
  let t: Tools;
  const rendered = new Map<string, { yaml: string; resources: Resource[] }>();

  beforeAll(() => {
    t = tools();
    for (const overlay of OVERLAYS) {
      const yaml = execFileSync(t.KUSTOMIZE, ['build', join(K8S, 'overlays', overlay)], { encoding: 'utf8' });
      const resources: Resource[] = parseAllDocuments(yaml).map((d) => d.toJS() as Resource);
      rendered.set(overlay, { yaml, resources });
    }
  }, 15 * 60_000);

  const render = (overlay: string) => {
    const r = rendered.get(overlay);
    if (!r) throw new Error(`overlay ${overlay} did not render`);
    return r;
  };
  const find = (overlay: string, kind: string) => render(overlay).resources.filter((r) => r.kind === kind);

  it.each(OVERLAYS)('overlay %s validates with kubeconform -strict, every resource against a schema', (overlay) => {
    const { yaml, resources } = render(overlay);
    const run = kubeconform(t, yaml);
    expect(run.stderr + run.stdout).toContain(`Summary: ${resources.length} resources found`);
    expect(run.stdout).toMatch(/Valid: \d+, Invalid: 0, Errors: 0, Skipped: 0/);
    expect(run.status).toBe(0);
  });

  it('kubeconform refuses a field the schema does not know (the strict schemas bite)', () => {
    const { resources } = render('keda');
    const scaled = resources.find((r) => r.kind === 'ScaledObject');
    const deployment = resources.find((r) => r.kind === 'Deployment');
    const typo = (r: Resource | undefined, patch: object) => JSON.stringify({ ...r, spec: { ...r?.spec, ...patch } });
    for (const bad of [typo(scaled, { minReplicas: 0 }), typo(deployment, { replica: 2 })]) {
      const run = kubeconform(t, bad);
      expect(run.stdout).toMatch(/additional properties? '(minReplicas|replica)' not allowed/);
      expect(run.status).not.toBe(0);
    }
  });

  it('KEDA scales inference on the real jobs queue, through the management API (unacked jobs count)', () => {
    const [scaled, ...others] = find('keda', 'ScaledObject');
    expect(others).toHaveLength(0);
    expect(scaled?.spec?.scaleTargetRef?.name).toBe('cxr-inference');
    const [trigger] = scaled?.spec?.triggers ?? [];
    expect(trigger?.type).toBe('rabbitmq');
    expect(trigger?.metadata.queueName).toBe(Topology.jobsQueue);
    expect(trigger?.metadata.protocol).toBe('http');
    expect(trigger?.metadata.mode).toBe('QueueLength');
    expect(scaled?.spec?.minReplicaCount).toBe(0);
    // Its credentials come from the Secret, by a key the example documents.
    const [auth] = find('keda', 'TriggerAuthentication');
    expect(auth?.metadata.name).toBe(trigger?.authenticationRef?.name);
    for (const ref of auth?.spec?.secretTargetRef ?? []) expect(secretExampleKeys).toContain(ref.key);
    expect(auth?.spec?.secretTargetRef).toHaveLength(1);
  });

  it('the HPA overlay scales inference on CPU and has no KEDA resource', () => {
    expect(find('hpa', 'HorizontalPodAutoscaler').map((h) => h.metadata.name)).toEqual(['cxr-inference']);
    expect(find('hpa', 'ScaledObject')).toHaveLength(0);
    expect(find('keda', 'HorizontalPodAutoscaler')).toHaveLength(0);
  });

  it.each(OVERLAYS)('overlay %s inlines no Secret, and every key it reads is in secrets.example.env', (overlay) => {
    const { resources } = render(overlay);
    expect(resources.filter((r) => r.kind === 'Secret')).toHaveLength(0);
    const keys = resources
      .flatMap((r) => r.spec?.template?.spec.containers ?? [])
      .flatMap((c) => c.env ?? [])
      .map((e) => e.valueFrom?.secretKeyRef)
      .filter((ref) => ref !== undefined);
    expect(keys.length).toBeGreaterThan(5);
    for (const ref of keys) {
      expect(ref.name).toBe('cxr-secrets');
      expect(secretExampleKeys).toContain(ref.key);
    }
    expect(resources.every((r) => r.metadata.namespace === 'cxr')).toBe(true);
  });

  it('every service has probes, resources, a PodDisruptionBudget and a locked-down pod', () => {
    const deployments = find('keda', 'Deployment');
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual(['cxr-gateway', 'cxr-inference', 'cxr-results']);
    const budgets = find('keda', 'PodDisruptionBudget').map((p) => p.metadata.name);
    const workloads = [...deployments, ...find('keda', 'Job')];
    expect(workloads.length).toBe(4);
    for (const w of workloads) {
      const pod = w.spec?.template?.spec;
      const [container] = pod?.containers ?? [];
      expect(pod?.automountServiceAccountToken).toBe(false);
      expect(pod?.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect(container?.securityContext).toMatchObject({
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
      });
      expect(container?.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
      expect(pod?.volumes?.find((v) => v.name === 'tmp')?.emptyDir).toBeDefined();
      expect(container?.resources?.requests?.memory).toBeDefined();
      expect(container?.resources?.limits?.memory).toBeDefined();
      if (w.kind !== 'Deployment') continue;
      expect(container?.livenessProbe?.httpGet?.path).toBe('/live');
      expect(container?.readinessProbe?.httpGet?.path).toBe('/ready');
      expect(budgets).toContain(w.metadata.name);
    }
    // The autoscaler owns inference's replica count; applying again must not reset it.
    expect(deployments.find((d) => d.metadata.name === 'cxr-inference')?.spec?.replicas).toBeUndefined();
  });
});
