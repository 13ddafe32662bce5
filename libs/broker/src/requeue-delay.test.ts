import { requeueDelay, withHeartbeat } from './broker';

describe('requeueDelay', () => {
  it('doubles per delivery from the first wait and stops at 30 s', () => {
    expect([0, 1, 2, 3, 4].map((n) => requeueDelay(n, 1000))).toEqual([1000, 2000, 4000, 8000, 16000]);
    expect(requeueDelay(10, 1000)).toBe(30_000);
  });

  it('treats a missing or odd count as a first delivery', () => {
    expect(requeueDelay(-1, 500)).toBe(500);
    expect(requeueDelay(0, 0)).toBe(0);
  });
});

describe('withHeartbeat', () => {
  it('adds the heartbeat to the URL unless it names one', () => {
    expect(withHeartbeat('amqp://u:p%40ss@host:5672/v%2Fh', 15)).toBe('amqp://u:p%40ss@host:5672/v%2Fh?heartbeat=15');
    expect(withHeartbeat('amqp://host/?heartbeat=5', 15)).toBe('amqp://host/?heartbeat=5');
  });
});
