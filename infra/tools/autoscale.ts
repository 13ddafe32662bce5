// Scales the local inference replicas on the depth of cxr.jobs, as KEDA's RabbitMQ scaler does
// for a Kubernetes Deployment. Reads the queue through the management API with the admin
// account and turns the knob `./cxr scale N`. Stop it with Ctrl-C.
//   ./cxr autoscale   (AUTOSCALE_MIN=1 AUTOSCALE_MAX=4 AUTOSCALE_JOBS_PER_REPLICA=20 AUTOSCALE_INTERVAL_SECONDS=5)
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { decideReplicas, type ScalePolicy, type ScaleState } from './autoscale-policy';

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

/** Replicas alive now (their pid files in the services folder), whatever scaled them. */
function runningReplicas(servicesDir: string): number {
  let alive = 0;
  for (const file of readdirSync(servicesDir).filter((f) => /^inference-\d+\.pid$/.test(f))) {
    try {
      process.kill(Number(readFileSync(join(servicesDir, file), 'utf8').trim()), 0);
      alive += 1;
    } catch {
      // gone
    }
  }
  return alive;
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
  console.log(`[autoscale] ${policy.min}..${policy.max} replicas, ${policy.jobsPerReplica} ready jobs each`);
  for (;;) {
    try {
      const ready = await readyJobs();
      const state: ScaleState = { replicas: runningReplicas(servicesDir), lowChecks };
      const next = decideReplicas(ready, state, policy);
      if (next.replicas !== state.replicas) {
        console.log(`[autoscale] ${ready} ready jobs: ${state.replicas} → ${next.replicas} replicas`);
        execFileSync('bash', [run, 'scale', String(next.replicas)], { stdio: 'inherit' });
      }
      lowChecks = next.lowChecks;
    } catch (error) {
      console.error(`[autoscale] ${(error as Error).message}; retrying`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

void main();
