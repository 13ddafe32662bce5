import { createHash } from 'node:crypto';
import { ObjectNotFoundError, ObjectTooLargeError, type ObjectStore } from '@cxr/storage';
import { UnrecoverableJobError } from './errors';

/** What to call a blob in the errors of a job that can never succeed with it. */
export interface BlobErrors {
  /** Prefix of the error codes: IMAGE → IMAGE_MISSING, IMAGE_TOO_LARGE, IMAGE_INTEGRITY. */
  code: 'IMAGE' | 'MODEL';
  missing: string;
  tooLarge: string;
  corrupt: string;
}

/**
 * Reads a blob whole (at most `maxBytes`) and checks it against the sha256 recorded when it
 * was accepted. A missing, oversized or altered blob is unrecoverable; anything else (S3
 * unreachable) is thrown as it is, so the job is retried.
 */
export async function fetchVerified(
  store: ObjectStore,
  blob: { key: string; sha256: string },
  maxBytes: number,
  errors: BlobErrors,
): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await store.getBuffer(blob.key, maxBytes);
  } catch (error) {
    if (error instanceof ObjectNotFoundError) throw new UnrecoverableJobError(`${errors.code}_MISSING`, errors.missing);
    if (error instanceof ObjectTooLargeError)
      throw new UnrecoverableJobError(`${errors.code}_TOO_LARGE`, errors.tooLarge);
    throw error;
  }
  if (createHash('sha256').update(bytes).digest('hex') !== blob.sha256) {
    throw new UnrecoverableJobError(`${errors.code}_INTEGRITY`, errors.corrupt);
  }
  return bytes;
}
