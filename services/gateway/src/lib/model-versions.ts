import { isDuplicateKeyError, type ClassifierModel, type Models, type Types } from '@cxr/db';
import { conflict } from '../errors';

/** A new model's fields, but its version: that is the dataset's next one. */
export type NewModelVersion = Omit<ClassifierModel, 'version' | 'status' | 'uploaded_on' | 'retired_on'> & {
  _id: Types.ObjectId;
};

/**
 * Stores a model as its dataset's next version. Uploads racing on one dataset read the same
 * latest version; the unique index on (dataset, version) lets one insert win, and each loser
 * reads again and takes the next number. Every lost attempt means another upload got a version,
 * so after `attempts` losses the upload is answered 409 (try again), never a duplicate or a 500.
 */
export async function createNextVersion(
  models: Pick<Models, 'ClassifierModel'>,
  fields: NewModelVersion,
  attempts = 8,
) {
  const { ClassifierModel } = models;
  for (let attempt = 1; ; attempt++) {
    const last = await ClassifierModel.findOne({ dataset: fields.dataset }, { version: 1 })
      .sort({ version: -1 })
      .lean();
    try {
      return await ClassifierModel.create({ ...fields, version: (last?.version ?? 0) + 1 });
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
      if (attempt >= attempts) {
        throw conflict(
          `${attempts} other models were uploaded to this dataset while this one was stored; upload it again`,
        );
      }
    }
  }
}
