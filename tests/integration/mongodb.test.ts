import { isDuplicateKeyError, Types } from '@cxr/db';
import { createTestDatabase, type TestDatabase } from '../support/stack';

// Real servers: jest's 5 s default is too short for a slow or loaded machine.
jest.setTimeout(60_000);

describe('MongoDB protocol server through mongoose', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it('creates, finds and updates a record', async () => {
    const { Dataset } = t.db.models;
    const owner = new Types.ObjectId();
    const created = await Dataset.create({
      owner,
      name: 'chest',
      display_name: 'Chest X-rays',
      img_width: 256,
      img_height: 256,
    });
    const found = await Dataset.findById(created._id).lean();
    expect(found?.display_name).toBe('Chest X-rays');
    expect(found?.maintain_ratio).toBe(false);

    await Dataset.updateOne({ _id: created._id }, { $set: { description: 'PA views' } });
    const updated = await Dataset.findOne({ owner, name: 'chest' }).lean();
    expect(updated?.description).toBe('PA views');
  });

  it('refuses a second record that breaks a unique index', async () => {
    const { Dataset } = t.db.models;
    const owner = new Types.ObjectId();
    const fields = { owner, name: 'dup', display_name: 'D', img_width: 1, img_height: 1 };
    await Dataset.create(fields);
    let caught: unknown;
    try {
      await Dataset.create(fields);
    } catch (error) {
      caught = error;
    }
    expect(isDuplicateKeyError(caught)).toBe(true);
    // Another owner may use the same name.
    await expect(Dataset.create({ ...fields, owner: new Types.ObjectId() })).resolves.toBeDefined();
    expect(await Dataset.countDocuments({ name: 'dup' })).toBe(2);
  });

  it('keeps one result per request however many writers race', async () => {
    const { ClassificationResult } = t.db.models;
    const request = new Types.ObjectId();
    const attempts = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) =>
        ClassificationResult.create({
          _id: request,
          request,
          state: 'classified',
          model: new Types.ObjectId(),
          worker: `w${i}`,
          source: 'worker',
          completed_on: new Date(),
        }),
      ),
    );
    expect(attempts.filter((a) => a.status === 'fulfilled')).toHaveLength(1);
    const refused = attempts.filter((a): a is PromiseRejectedResult => a.status === 'rejected');
    expect(refused.map((a) => isDuplicateKeyError(a.reason))).toEqual([true, true, true, true]);
    expect(await ClassificationResult.countDocuments({ request })).toBe(1);
  });
});
