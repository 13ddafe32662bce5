import { warmUpShedding } from './warm-up';

/**
 * The sockets open in this process right now. `process._getActiveHandles` is Node's own
 * (undocumented) list; the public `getActiveResourcesInfo` only names kinds, and jest runs other
 * test files in this worker whose sockets may close while this one runs, so a count would be flaky.
 */
function openSockets(): Set<object> {
  const handles = (process as unknown as { _getActiveHandles(): object[] })._getActiveHandles();
  return new Set(handles.filter((handle) => handle.constructor.name === 'Socket'));
}

describe('warmUpShedding', () => {
  it('sheds every submission it sends but the one holding the slot, and leaves nothing open', async () => {
    const before = openSockets();
    const warm = await warmUpShedding(200, () => 'warm-up');
    expect(warm.shed).toBe(200);
    expect(warm.ms).toBeGreaterThan(0);
    // Destroyed sockets release their handles within a few turns of the loop.
    let left: object[] = [];
    for (let turn = 0; turn < 100; turn++) {
      left = [...openSockets()].filter((socket) => !before.has(socket));
      if (left.length === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(left.length).toBe(0);
  });
});
