import { currentReplicas, decideReplicas, needsReconcile, type ScalePolicy } from './autoscale-policy';

const policy: ScalePolicy = { min: 1, max: 4, jobsPerReplica: 10, downAfterChecks: 3 };

describe('decideReplicas', () => {
  it('scales up at once to cover the ready jobs, within the bounds', () => {
    expect(decideReplicas(25, { replicas: 1, lowChecks: 0 }, policy)).toEqual({ replicas: 3, lowChecks: 0 });
    expect(decideReplicas(1000, { replicas: 1, lowChecks: 0 }, policy)).toEqual({ replicas: 4, lowChecks: 0 });
    expect(decideReplicas(0, { replicas: 0, lowChecks: 0 }, policy)).toEqual({ replicas: 1, lowChecks: 0 });
  });

  it('scales down only after the queue allowed it for several checks in a row', () => {
    let state = { replicas: 4, lowChecks: 0 };
    state = decideReplicas(0, state, policy);
    state = decideReplicas(0, state, policy);
    expect(state).toEqual({ replicas: 4, lowChecks: 2 });
    state = decideReplicas(0, state, policy);
    expect(state).toEqual({ replicas: 1, lowChecks: 0 });
  });

  it('forgets a dip when the depth comes back', () => {
    let state = decideReplicas(0, { replicas: 3, lowChecks: 0 }, policy);
    state = decideReplicas(30, state, policy);
    expect(state).toEqual({ replicas: 3, lowChecks: 0 });
  });
});

describe('reconciling replica slots', () => {
  const slots = (...pairs: [number, boolean][]) => pairs.map(([index, supervised]) => ({ index, supervised }));

  it('counts up to the highest supervised replica, so a dead replica below it is still wanted', () => {
    expect(currentReplicas(slots([1, false], [2, true]))).toBe(2);
    expect(currentReplicas(slots([1, false]))).toBe(0);
    expect(currentReplicas([])).toBe(0);
  });

  it('asks for a reconcile when a wanted replica has no live supervisor, even if another one lives', () => {
    expect(needsReconcile(slots([1, false], [2, true]), 2)).toBe(true);
    expect(needsReconcile(slots([2, true]), 2)).toBe(true);
    expect(needsReconcile(slots([1, true], [2, true]), 2)).toBe(false);
  });

  it('asks for a reconcile when anything is left above the target, alive or not', () => {
    expect(needsReconcile(slots([1, true], [2, true]), 1)).toBe(true);
    expect(needsReconcile(slots([1, true], [3, false]), 1)).toBe(true);
    expect(needsReconcile([], 0)).toBe(false);
  });
});
