import { StageTimer } from './server-timing';

describe('StageTimer', () => {
  it('times each stage from the end of the one before, in order, as Server-Timing entries', () => {
    const now = jest.spyOn(performance, 'now');
    try {
      now.mockReturnValueOnce(112.34).mockReturnValueOnce(112.34).mockReturnValueOnce(150);
      const timer = new StageTimer(100);
      timer.mark('auth');
      timer.mark('lookup');
      timer.mark('upload');
      expect(timer.header()).toBe('auth;dur=12.3, lookup;dur=0.0, upload;dur=37.7');
    } finally {
      now.mockRestore();
    }
  });

  it('says nothing before a stage has ended', () => {
    expect(new StageTimer().header()).toBe('');
  });
});
