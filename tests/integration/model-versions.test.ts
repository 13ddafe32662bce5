// Model uploads racing on one dataset's version number, on the real database: the unique index
// on (dataset, version) arbitrates, and every upload ends with its own version or a 409.
import { Types } from '@cxr/db';
import { HttpError } from '../../services/gateway/src/errors';
import { createNextVersion, type NewModelVersion } from '../../services/gateway/src/lib/model-versions';
import { createTestDatabase, type TestDatabase } from '../support/stack';

jest.setTimeout(60_000);

function newModel(dataset: Types.ObjectId, owner: Types.ObjectId): NewModelVersion {
  const _id = new Types.ObjectId();
  return {
    _id,
    dataset,
    dataset_owner: owner,
    uploaded_by: owner,
    name: 'model',
    blob: { key: `models/${String(dataset)}/${String(_id)}.onnx`, size: 1, sha256: '0'.repeat(64) },
    labels: ['a', 'b'],
    input_spec: {},
    input_name: 'input',
    output_name: 'output',
  };
}

describe('model versions under concurrent uploads to one dataset', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it('gives 10 concurrent uploads the versions 1 to 10, one each', async () => {
    const dataset = new Types.ObjectId();
    const owner = new Types.ObjectId();
    const created = await Promise.all(
      Array.from({ length: 10 }, () => createNextVersion(t.db.models, newModel(dataset, owner), 10)),
    );
    expect(created.map((m) => m.version).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const stored = await t.db.models.ClassifierModel.find({ dataset }, { version: 1 }).lean();
    expect(stored.map((m) => m.version).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('answers an upload that loses more races than it may try 409, and stores no duplicate version', async () => {
    const dataset = new Types.ObjectId();
    const owner = new Types.ObjectId();
    // One attempt each: all but the winners of each round lose once and give up.
    const outcomes = await Promise.allSettled(
      Array.from({ length: 6 }, () => createNextVersion(t.db.models, newModel(dataset, owner), 1)),
    );
    const refused = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []));
    const stored = await t.db.models.ClassifierModel.find({ dataset }, { version: 1 }).lean();
    const versions = stored.map((m) => m.version);
    expect(new Set(versions).size).toBe(versions.length);
    expect(versions.length + refused.length).toBe(6);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    for (const error of refused) {
      expect(error).toBeInstanceOf(HttpError);
      expect(error).toMatchObject({ statusCode: 409, code: 'CONFLICT' });
    }
  });

  it('does not retry an error other than a duplicate version', async () => {
    const owner = new Types.ObjectId();
    const invalid = { ...newModel(new Types.ObjectId(), owner), name: '' };
    const find = jest.spyOn(t.db.models.ClassifierModel, 'findOne');
    try {
      await expect(createNextVersion(t.db.models, invalid)).rejects.toMatchObject({ name: 'ValidationError' });
      expect(find).toHaveBeenCalledTimes(1);
    } finally {
      find.mockRestore();
    }
  });
});
