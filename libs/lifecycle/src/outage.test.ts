import { createLogger } from '@cxr/logging';
import { holdThroughOutages, type DependencyWatch } from './outage';

const silent = createLogger({ service: 'test', level: 'silent' });

function dependencies(upAfterChecks: number): DependencyWatch & { checks: number; waits: number } {
  const state = {
    checks: 0,
    waits: 0,
    async checkNow() {
      state.checks += 1;
      return state.checks > upAfterChecks;
    },
    async waitUntilReady() {
      state.waits += 1;
    },
  };
  return state;
}

describe('holdThroughOutages', () => {
  it('runs the handler again after the dependency is back, instead of giving the message back', async () => {
    const deps = dependencies(1);
    let calls = 0;
    let held = 0;
    const handler = holdThroughOutages(
      async (n: number) => {
        calls += 1;
        if (calls === 1) throw new Error('ECONNREFUSED');
        return n * 2;
      },
      deps,
      silent,
      () => (held += 1),
    );
    await expect(handler(21)).resolves.toBe(42);
    expect({ calls, held, waits: deps.waits }).toEqual({ calls: 2, held: 1, waits: 1 });
  });

  it('throws the error of a message whose dependencies are all up, so it spends a delivery', async () => {
    const deps = dependencies(0);
    const handler = holdThroughOutages(
      async () => {
        throw new Error('bad message');
      },
      deps,
      silent,
    );
    await expect(handler(1)).rejects.toThrow('bad message');
    expect(deps.waits).toBe(0);
  });
});
