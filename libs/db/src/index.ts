export { connectDatabase, isDuplicateKeyError } from './database';
export type { Database, Models } from './database';
export type { User } from './entities/user';
export type { ApiKey } from './entities/api-key';
export type { Dataset } from './entities/dataset';
export type { ClassifierModel } from './entities/classifier-model';
export type { ClassificationRequest } from './entities/classification-request';
export type { ClassificationResult } from './entities/classification-result';
export { dispatchClaimId } from './entities/dispatch-claim';
export type { DispatchClaim } from './entities/dispatch-claim';
export type { IdempotencyRecord } from './entities/idempotency-record';
export {
  ClassificationRequests,
  idempotencyRecordId,
  lifecycleView,
  WEBHOOK_ATTEMPTS_KEPT,
} from './classification-requests';
export type {
  ApplyOptions,
  NewRequest,
  Outcome,
  RequestRecord,
  ResultRecord,
  WebhookAttempt,
} from './classification-requests';
export { Types } from 'mongoose';
