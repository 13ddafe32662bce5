// Scales the local inference replicas on the depth of cxr.jobs, as KEDA's RabbitMQ scaler does
// for a Kubernetes Deployment. Reads the queue through the management API with the admin
// account and turns the knob `./cxr scale N`, which reconciles each replica by its own pid files:
// it runs whenever the target changes or a replica's supervisor is missing. Stop it with Ctrl-C.
//   ./cxr autoscale   (AUTOSCALE_MIN=1 AUTOSCALE_MAX=4 AUTOSCALE_JOBS_PER_REPLICA=20 AUTOSCALE_INTERVAL_SECONDS=5)
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  currentReplicas,
  decideReplicas,
  needsReconcile,
  type ReplicaSlot,
  type ScalePolicy,
  type ScaleState,
} from './autoscale-policy';

function intFromEnv(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a whole number`);
  return value;
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required (run through ./cxr autoscale)`);
  return value;
}

async function readyJobs(): Promise<number> {
  const auth = Buffer.from(`${required('RABBITMQ_ADMIN_USER')}:${required('RABBITMQ_ADMIN_PASSWORD')}`).toString(
    'base64',
  );
  const response = await fetch(`${required('RABBITMQ_MANAGEMENT_URL')}/api/queues/cxr/cxr.jobs`, {
    headers: { authorization: `Basic ${auth}` },
  });
  if (!response.ok) throw new Error(`management API: ${response.status}`);
  return ((await response.json()) as { messages_ready?: number }).messages_ready ?? 0;
}

/** `pid` is alive and was started for this slot (run.sh sets CXR_SLOT exactly so), not a reused pid. */
function slotProcessAlive(servicesDir: string, name: string, pid: number): boolean {
  try {
    process.kill(pid, 0);
    return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`CXR_SLOT=${servicesDir}/${name}`);
  } catch {
    return false;
  }
}

/** Every replica with a pid or state file in the services folder, and whether its supervisor lives. */
function replicaSlots(servicesDir: string): ReplicaSlot[] {
  const indexes = new Set<number>();
  for (const file of readdirSync(servicesDir)) {
    const match = /^inference-(\d+)\.(supervisor\.pid|child\.pid|state|pid)$/.exec(file);
    if (match) indexes.add(Number(match[1]));
  }
  return [...indexes].map((index) => {
    const name = `inference-${index}`;
    let supervised = false;
    try {
      const pid = Number(readFileSync(join(servicesDir, `${name}.supervisor.pid`), 'utf8').trim());
      supervised = Number.isInteger(pid) && pid > 0 && slotProcessAlive(servicesDir, name, pid);
    } catch {
      // no supervisor pid file
    }
    return { index, supervised };
  });
}

async function main(): Promise<void> {
  const policy: ScalePolicy = {
    min: intFromEnv('AUTOSCALE_MIN', 1),
    max: intFromEnv('AUTOSCALE_MAX', 4),
    jobsPerReplica: Math.max(1, intFromEnv('AUTOSCALE_JOBS_PER_REPLICA', 20)),
    downAfterChecks: Math.max(1, intFromEnv('AUTOSCALE_DOWN_AFTER_CHECKS', 6)),
  };
  const intervalMs = Math.max(1, intFromEnv('AUTOSCALE_INTERVAL_SECONDS', 5)) * 1000;
  const run = resolve(__dirname, '..', 'run.sh');
  const servicesDir = required('SERVICES_DIR');
  let lowChecks = 0;
  let target: number | undefined;
  console.log(`[autoscale] ${policy.min}..${policy.max} replicas, ${policy.jobsPerReplica} ready jobs each`);
  for (;;) {
    try {
      const ready = await readyJobs();
      const slots = replicaSlots(servicesDir);
      const state: ScaleState = { replicas: target ?? currentReplicas(slots), lowChecks };
      const next = decideReplicas(ready, state, policy);
      lowChecks = next.lowChecks;
      const changed = next.replicas !== state.replicas;
      if (changed) console.log(`[autoscale] ${ready} ready jobs: ${state.replicas} → ${next.replicas} replicas`);
      if (changed || needsReconcile(slots, next.replicas)) {
        if (!changed) console.log(`[autoscale] ${next.replicas} replicas wanted, not each one supervised: reconciling`);
        execFileSync('bash', [run, 'scale', String(next.replicas)], { stdio: 'inherit' });
      }
      target = next.replicas;
    } catch (error) {
      console.error(`[autoscale] ${(error as Error).message}; retrying`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

void main();
