import { createLogger } from '@cxr/logging';
import { Types, type RequestRecord } from '@cxr/db';
import type { JobTarget } from './dispatcher';
import { UnsentJobs } from './unsent-jobs';

const logger = createLogger({ service: 'test', level: 'silent' });
const token = { secret: 's', record: { hash: 'h', seq: 1, expires_at: new Date(0) } };
const target = { keepAspectRatio: false } as JobTarget;
const doc = () => ({ _id: new Types.ObjectId() }) as RequestRecord;

describe('UnsentJobs', () => {
  it('publishes every kept job when flushed, and forgets the ones that went', async () => {
    const unsent = new UnsentJobs();
    const [a, b] = [doc(), doc()];
    unsent.add(a, token, target);
    unsent.add(b, token, target);
    const published: string[] = [];
    await unsent.flush(async (job) => void published.push(String(job.doc._id)), logger);
    expect(published).toEqual([String(a._id), String(b._id)]);
    expect(unsent.size).toBe(0);
  });

  it('keeps what could not be published for the next flush, and stops at the first failure', async () => {
    const unsent = new UnsentJobs();
    unsent.add(doc(), token, target);
    unsent.add(doc(), token, target);
    let calls = 0;
    await unsent.flush(async () => {
      calls += 1;
      throw new Error('broker away');
    }, logger);
    expect({ calls, left: unsent.size }).toEqual({ calls: 1, left: 2 });
  });

  it('keeps at most its bound; the publish timers cover the rest', () => {
    const unsent = new UnsentJobs(2);
    for (let i = 0; i < 5; i++) unsent.add(doc(), token, target);
    expect(unsent.size).toBe(2);
  });
});
