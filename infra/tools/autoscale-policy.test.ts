import { decideReplicas, type ScalePolicy } from './autoscale-policy';

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
