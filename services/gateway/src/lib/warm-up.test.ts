import { warmUpShedding } from './warm-up';

describe('warmUpShedding', () => {
  it('sheds every submission it sends but the one holding the slot, and leaves nothing open', async () => {
    const handlesBefore = process.getActiveResourcesInfo().filter((kind) => kind === 'TCPSocketWrap').length;
    const warm = await warmUpShedding(200, () => 'warm-up');
    expect(warm.shed).toBe(200);
    expect(warm.ms).toBeGreaterThan(0);
    // Destroyed sockets release their handles within a few turns of the loop.
    let handlesAfter = Infinity;
    for (let turn = 0; turn < 100 && handlesAfter > handlesBefore; turn++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      handlesAfter = process.getActiveResourcesInfo().filter((kind) => kind === 'TCPSocketWrap').length;
    }
    expect(handlesAfter).toBe(handlesBefore);
  });
});
