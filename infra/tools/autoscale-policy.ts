/** How many inference replicas a queue depth calls for: pure, so it is unit-tested. */
export interface ScalePolicy {
  min: number;
  max: number;
  /** Ready jobs one replica is expected to keep up with. */
  jobsPerReplica: number;
  /** Scale down only after the depth has allowed it for this many consecutive checks. */
  downAfterChecks: number;
}

export interface ScaleState {
  replicas: number;
  /** Consecutive checks that would have allowed fewer replicas. */
  lowChecks: number;
}

export function decideReplicas(readyJobs: number, state: ScaleState, policy: ScalePolicy): ScaleState {
  const wanted = Math.min(policy.max, Math.max(policy.min, Math.ceil(readyJobs / policy.jobsPerReplica)));
  if (wanted > state.replicas) return { replicas: wanted, lowChecks: 0 };
  if (wanted < state.replicas) {
    const lowChecks = state.lowChecks + 1;
    // Up at once, down slowly: a queue that empties between bursts should not make replicas flap.
    return lowChecks >= policy.downAfterChecks
      ? { replicas: wanted, lowChecks: 0 }
      : { replicas: state.replicas, lowChecks };
  }
  return { replicas: state.replicas, lowChecks: 0 };
}

/** One inference replica's slot in the services folder (it has a pid or state file). */
export interface ReplicaSlot {
  index: number;
  /** Its supervisor is alive (the supervisor restarts the replica itself when it dies). */
  supervised: boolean;
}

/** The replicas running now, as far as scaling goes: the highest replica with a live supervisor. */
export function currentReplicas(slots: ReplicaSlot[]): number {
  return Math.max(0, ...slots.filter((slot) => slot.supervised).map((slot) => slot.index));
}

/**
 * Whether `./cxr scale target` has work to do: a replica 1..target without a live supervisor,
 * or anything left of a replica above target.
 */
export function needsReconcile(slots: ReplicaSlot[], target: number): boolean {
  const supervised = new Set(slots.filter((slot) => slot.supervised).map((slot) => slot.index));
  for (let i = 1; i <= target; i++) if (!supervised.has(i)) return true;
  return slots.some((slot) => slot.index > target);
}
