export { CxrApiError, CxrClient, succeed } from './cxr-client';
export type {
  ClassificationRequest,
  ClassifyOptions,
  ClassifyTarget,
  CxrClientOptions,
  ImageInput,
  InputSpec,
  Model,
  Schemas,
  Submission,
  WebhookEvent,
} from './cxr-client';
export type { components, operations, paths } from './schema';
export { Client, createUser, imageForm, modelForm } from './raw-client';
export type { ApiResponse } from './raw-client';
export { verifyWebhookSignature, WebhookSignatureError } from './webhooks';
export type { VerifyWebhookOptions, WebhookSignatureProblem } from './webhooks';
