import { Schema, type InferSchemaType } from 'mongoose';

/**
 * Dispatch number `seq` (2 and up) of a request, claimed before it is made: the primary key
 * `<request id>:<seq>` lets every gateway replica's sweeper act on the same due timer while
 * only one of them dispatches. The first dispatch is made with the request itself.
 */
export const dispatchClaimSchema = new Schema(
  {
    _id: { type: String, required: true, match: /^[0-9a-f]{24}:\d+$/ },
    claimed_at: { type: Date, required: true },
  },
  { collection: 'dispatch_claims' },
);
export type DispatchClaim = InferSchemaType<typeof dispatchClaimSchema>;

export function dispatchClaimId(requestId: { toString(): string }, seq: number): string {
  return `${requestId.toString()}:${seq}`;
}
